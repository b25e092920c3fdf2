"""The launcher's options (hydra.launcher.*), judged by the code that will take them: the plugin
class's own keyword arguments (an unknown key added with `+hydra.launcher.k=v` was a TypeError inside
Hydra), joblib's Parallel for the joblib launcher's values, and SLURM's rules for submitit's."""
from __future__ import annotations

import inspect
import re

from omegaconf import OmegaConf

from trainlab.errors import ConfigError

SLURM_MEMORY = re.compile(r"^\d+[KMGT]?$")  # sbatch --mem-per-cpu/--mem-per-gpu: a size, default unit MB
MMAP_MODES = (None, "r+", "r", "w+", "c")   # numpy.memmap's modes, which joblib hands its workers


def check_plugin_keys(prefix: str, node: dict) -> None:
    """Every key of a sweeper's or launcher's config is an argument its class takes."""
    target = node.get("_target_")
    if not target:
        return
    from hydra.utils import get_class

    try:
        cls = get_class(str(target))
    except Exception as err:
        raise ConfigError(f"{prefix}._target_", target, f"an importable plugin class ({type(err).__name__})") from None
    params = inspect.signature(cls.__init__).parameters.values()
    if any(p.kind == p.VAR_KEYWORD for p in params):
        return
    known = sorted(p.name for p in params if p.name != "self")
    for key, value in node.items():
        if key != "_target_" and key not in known:
            raise ConfigError(f"{prefix}.{key}", value, f"a key {cls.__name__} takes: {', '.join(known) or 'none'}")


def check_launcher(hydra_cfg) -> None:
    # unresolved: submitit's folder and job name interpolate Hydra's runtime values, unknown until a job runs
    launcher = OmegaConf.to_container(hydra_cfg.launcher, resolve=False)
    check_plugin_keys("hydra.launcher", launcher)
    target = str(launcher.get("_target_", ""))
    plain = {k: v for k, v in launcher.items() if not _interpolated(v)}
    if target.endswith("JoblibLauncher"):
        _check_joblib(plain)
    elif "submitit_launcher" in target:
        _check_submitit(plain)


def _interpolated(value) -> bool:
    return isinstance(value, str) and "${" in value


def _check_joblib(cfg: dict) -> None:
    """joblib.Parallel's own checks, one keyword at a time (so the key at fault is named), on the values
    as Hydra's joblib launcher hands them over (its process_joblib_cfg turns numeric strings into ints)."""
    from dataclasses import fields

    from hydra_plugins.hydra_joblib_launcher._core import process_joblib_cfg
    from hydra_plugins.hydra_joblib_launcher.config import JobLibLauncherConf
    from joblib import Parallel
    from joblib._utils import eval_expr

    options = {k: v for k, v in cfg.items() if k != "_target_"}
    known = sorted(f.name for f in fields(JobLibLauncherConf) if f.name != "_target_")
    for key in options:  # the launcher takes **kwargs and hands them to joblib.Parallel
        if key not in known:
            raise ConfigError(f"hydra.launcher.{key}", options[key], f"a key of the joblib launcher: {', '.join(known)}")
    process_joblib_cfg(options)
    n_jobs = options.get("n_jobs", -1)
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0:
        raise ConfigError("hydra.launcher.n_jobs", n_jobs, "a non-zero integer: jobs at once (-1 = every core, "
                          "-2 = all but one, ...)")
    for key in ("backend", "prefer", "require", "batch_size", "max_nbytes", "temp_folder"):
        if key in options:
            try:
                Parallel(n_jobs=n_jobs, **{key: options[key]})
            except (ValueError, TypeError) as err:
                raise ConfigError(f"hydra.launcher.{key}", options[key], str(err).splitlines()[0]) from None
    verbose = options.get("verbose", 0)
    if isinstance(verbose, bool) or not isinstance(verbose, int) or verbose < 0:
        raise ConfigError("hydra.launcher.verbose", verbose, "an integer >= 0 (0: quiet)")
    timeout = options.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise ConfigError("hydra.launcher.timeout", timeout, "null (no limit) or seconds > 0")
    if options.get("mmap_mode", "r") not in MMAP_MODES:
        raise ConfigError("hydra.launcher.mmap_mode", options["mmap_mode"], "one of r, r+, w+, c or null")
    dispatch = options.get("pre_dispatch", "2*n_jobs")
    if dispatch != "all":
        try:  # how joblib reads it when the jobs start
            value = dispatch if isinstance(dispatch, int) else eval_expr(str(dispatch).replace("n_jobs", str(abs(n_jobs))))
            ok = not isinstance(value, bool) and value >= 1
        except (ValueError, TypeError, SyntaxError, KeyError):
            ok = False
        if not ok:
            raise ConfigError("hydra.launcher.pre_dispatch", dispatch,
                              "all, an integer >= 1 or an expression in n_jobs such as 2*n_jobs")


def _check_submitit(cfg: dict) -> None:
    """The counts trainlab.app.precheck._check_submitit_resources does not check, and SLURM's memory sizes."""
    for key, least in (("array_parallelism", 1), ("cpus_per_gpu", 1), ("gpus_per_task", 0)):
        value = cfg.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
            raise ConfigError(f"hydra.launcher.{key}", value, f"an integer >= {least}")
    for key in ("mem_per_gpu", "mem_per_cpu"):
        value = cfg.get(key)
        if value is not None and not SLURM_MEMORY.match(str(value)):
            raise ConfigError(f"hydra.launcher.{key}", value, "a SLURM memory size: a number of MB, or with a "
                              "unit K, M, G or T (e.g. 8G)")
    setup = cfg.get("setup")
    if setup is not None and not (isinstance(setup, list) and all(isinstance(s, str) for s in setup)):
        raise ConfigError("hydra.launcher.setup", setup, "a list of shell lines, e.g. [\"module load cuda\"]")
