"""Check `trainlab train` overrides before Hydra starts anything.

Hydra's own messages for a typo span several lines and end in a hint about
HYDRA_FULL_ERROR; here every combination a sweep would run is composed and
validated up front, and the first problem becomes one line naming the key,
the value and what is valid. Nothing is trained and nothing is written.
"""
import importlib.util
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict

from trainlab.app.compose import compose_job, groups, hydra_session
from trainlab.devices import check_device
from trainlab.app.prechecks.jobs import JobChecks
from trainlab.app.prechecks.sweeper import check_sweep
from trainlab.errors import ConfigError
from trainlab.app.override_errors import check_flags
from trainlab.app.run_folder import check_run_dir, holds_run
from trainlab.app.sweep_overrides import MAX_COMBINATIONS, check_group_choice, type_prefix, expand, split_args

INFO_FLAGS = {"--help", "-h", "--hydra-help", "--info", "-i", "--shell-completion", "-sc"}
SWEEPER = "hydra_plugins.trainlab_sweeper.trainlab_sweeper.TrainlabSweeper"
# Launchers from optional plugins (pip install trainlab[launchers]) -> the hydra_plugins package providing them.
LAUNCHER_PLUGINS = {"joblib": "hydra_joblib_launcher", "submitit_local": "hydra_submitit_launcher",
                    "submitit_slurm": "hydra_submitit_launcher", "slurm": "hydra_submitit_launcher",
                    "slurm_ddp": "hydra_submitit_launcher"}


@dataclass
class Plan:
    """What `trainlab train ARGS` will do, found before anything runs or is written."""

    args: list[str]                # what Hydra gets
    multirun: bool = False
    info_only: bool = False        # --help, --info, -sc, --cfg: Hydra answers, no run
    sweep_dir: Path | None = None  # a multirun's folder, fixed before any job starts
    run_dir: Path | None = None    # a single run's folder, fixed now (a timestamp would move)
    config: dict | None = None     # a single run's resolved config (the folder decision compares it)
    resume: bool = False
    jobs: int = 0                  # jobs validated


def precheck(args: list[str]) -> int:
    """Validate every job of `trainlab train args`; returns the number of jobs checked."""
    return prepare(args).jobs


def prepare(args: list[str]) -> Plan:
    """Validate every job of `trainlab train args` with the job's own validation
    (trainlab.config.validate) and return the arguments for Hydra.

    The run's folder is resolved now and pinned (`hydra.run.dir` / `hydra.sweep.dir`): the
    folder is claimed before Hydra writes into it, and jobs that a launcher runs in other
    processes cannot tell the CLI where they went. A multirun gets trainlab's sweeper unless
    `hydra/sweeper=` picks another. No torch import on this path.
    """
    from trainlab.config import validate

    flags, overrides = split_args(args)
    check_flags(flags, INFO_FLAGS)
    if INFO_FLAGS & set(flags):
        return Plan(list(args), info_only=True)
    multirun = bool({"-m", "--multirun"} & set(flags))
    show_cfg = bool({"--cfg", "-c"} & set(flags))
    if multirun and show_cfg:
        raise ConfigError("--cfg", "with -m", "one of them: --cfg prints one job's config, -m runs the sweep")
    task = [o for o in overrides if not _is_hydra(o)]
    hydra = [o for o in overrides if _is_hydra(o)]
    _check_launcher(hydra)
    combos = expand(task)  # also turns override syntax errors into one line
    out = [a for a in args if a not in overrides] + task + hydra
    with hydra_session():
        if not multirun:
            cfg = compose_job(task + hydra, with_hydra=True)
            run_dir = Path(str(OmegaConf.select(cfg, "hydra.run.dir"))).absolute()
            if OmegaConf.select(cfg, "hydra.sweeper.params") and not show_cfg:  # a study preset run as one job
                preset = next((o.split("=", 1)[1] for o in task if _key(o).lstrip("+") == "experiment"), "…")
                raise ConfigError("experiment", preset, f"run it as a sweep: trainlab train -m experiment={preset} "
                                  "(a study preset: without -m one job of its base settings would run)")
            with open_dict(cfg):
                del cfg["hydra"]
            spec = validate(cfg)
            if show_cfg:
                return Plan(out, info_only=True, jobs=1)
            check_device("trainer.device", spec.trainer.device)
            check_user_callbacks(spec)
            check_run_dir("hydra.run.dir", run_dir)
            JobChecks(run_dir=run_dir)(spec)  # loggers' servers, dataset files (trainlab.app.prechecks)
            out = [a for a in out if _key(a) != "hydra.run.dir"] + [f"hydra.run.dir={_quote(str(run_dir))}"]
            return Plan(out, run_dir=run_dir, config=OmegaConf.to_container(cfg, resolve=True),
                        resume=spec.resume, jobs=1)
        hydra_cfg, handed = _hydra_config(task, hydra)
        out = [a for a in args if a not in overrides] + handed + hydra
        check_sweep(hydra_cfg, task)  # the sweeper's and launcher's own options (trainlab.app.prechecks)
        _check_submitit_resources(hydra_cfg)
        sweep_dir = Path(str(hydra_cfg.sweep.dir)).absolute()
        check_run_dir("hydra.sweep.dir", sweep_dir)  # its own folder, not the working one nor a run's
        if holds_run(sweep_dir):
            raise ConfigError("hydra.sweep.dir", str(sweep_dir), "a sweep's own folder (this one holds a single run)")
        user_dir = any(_key(o) == "hydra.sweep.dir" for o in hydra)
        combos = _planned_jobs(hydra_cfg, task, combos, user_dir)
        if not combos:
            raise ConfigError("sweep", " ".join(task) or "(no overrides)", "at least one job (an empty range?)")
        out = [a for a in out if _key(a) != "hydra.sweep.dir"] + [f"hydra.sweep.dir={_quote(str(sweep_dir))}"]
        check = None
        if str(hydra_cfg.launcher.get("_target_", "")).endswith("VectorizedLauncher"):
            from trainlab.app.vectorize_groups import check_sweeper, check_vectorizable as check

            check_sweeper(str(hydra_cfg.sweeper.get("_target_", "")))
        devices = validate_jobs(combos[:MAX_COMBINATIONS], JobChecks(check))
        if "SlurmLauncher" not in str(hydra_cfg.launcher.get("_target_", "")):  # jobs run on this machine
            for device in sorted(devices):
                check_device("trainer.device", device)
    return Plan(out, multirun=True, sweep_dir=sweep_dir, jobs=len(combos))


def validate_jobs(jobs: list[list[str]], check=None) -> set[str]:
    """Validate every job's config (and `check(spec)` each, when given); the devices they ask for. Jobs that differ only in `seed` (a sweep's replicates) are
    composed once: composing costs ~0.3 s a job, and a plain `seed=N` changes nothing else in the
    config, so each replicate is that composition with its seed set, then validated in full."""
    from trainlab.config import validate

    composed: dict[tuple, DictConfig] = {}
    devices = set()
    for job in jobs:
        seeds = [o for o in job if _key(o) == "seed" and type_prefix(o) is None]
        rest = tuple(o for o in job if o not in seeds)
        if len(seeds) != 1:
            spec = validate(compose_job(job))
        elif rest not in composed:
            composed[rest] = compose_job(job)
            spec = validate(composed[rest])
        else:
            cfg = composed[rest].copy()
            cfg.seed = yaml.safe_load(seeds[0].partition("=")[2])  # as Hydra reads an override value
            spec = validate(cfg)
        devices.add(spec.trainer.device)
        check_user_callbacks(spec)
        if check is not None:
            check(spec)
    return devices


def check_user_callbacks(spec) -> None:
    """callbacks=[...]: each one imports and names a hook (trainlab.app.callbacks)."""
    if spec.callbacks:
        from trainlab.app.callbacks import check_callbacks

        check_callbacks(spec.callbacks)


def _key(override: str) -> str:
    return override.lstrip("+~").partition("=")[0]


def _is_hydra(override: str) -> bool:
    return _key(override).startswith(("hydra.", "hydra/"))


def _quote(value: str) -> str:
    from trainlab.sweep.resume import quote

    return quote(value)


def _check_launcher(hydra_overrides: list[str]) -> None:
    for override in hydra_overrides:
        if _key(override) == "hydra/launcher":
            choice = override.partition("=")[2]
            plugin = LAUNCHER_PLUGINS.get(choice)
            if plugin and importlib.util.find_spec(f"hydra_plugins.{plugin}") is None:
                raise ConfigError("hydra/launcher", choice,
                                  f"needs the {plugin.replace('_', '-')} plugin: pip install 'trainlab[launchers]'")


def _check_submitit_resources(hydra_cfg) -> None:
    """What a submitit launcher asks SLURM for: a bad value is one line now, not an sbatch error later."""
    launcher = hydra_cfg.launcher
    target = str(launcher.get("_target_", ""))
    if "submitit_launcher" not in target:
        return
    for key, least in (("nodes", 1), ("tasks_per_node", 1), ("timeout_min", 1), ("cpus_per_task", 1),
                       ("gpus_per_node", 0), ("mem_gb", 1), ("signal_delay_s", 0), ("max_num_timeout", 0)):
        value = launcher.get(key)
        if value is not None and value < least:
            raise ConfigError(f"hydra.launcher.{key}", value, f"an integer >= {least}")
    if target.endswith("SlurmLauncher") and not shutil.which("sbatch"):
        choice = OmegaConf.select(hydra_cfg, "runtime.choices.hydra/launcher", default="slurm")
        raise ConfigError("hydra/launcher", choice, "a machine with SLURM (no sbatch here): submit from the "
                          "cluster's login node, or try the same path here with hydra/launcher=submitit_local")
    if target.endswith("SlurmLauncher"):  # what this cluster's partitions hold (sinfo): trainlab.app.slurm_cluster
        importlib.import_module("trainlab.app.slurm_cluster").check_partition_resources(launcher)


def _hydra_config(task: list[str], hydra: list[str]) -> tuple:
    """(Hydra's own config for this sweep, the task overrides to hand Hydra).

    Hydra composes a sweep's own config without the sweep axes, so a fixed key that only
    exists under a swept option (`augment=crop,standard augment.crop.padding=1`) fails there
    although every job composes. Such fixed keys are then handed over as `++key=value`: each
    job was validated with the plain form before, so in every job the key exists and `++`
    only sets it, exactly as the plain form would."""
    parsed = OverridesParser.create().parse_overrides(task)
    fixed = [raw for raw, ov in zip(task, parsed) if not ov.is_sweep_override()]
    try:
        return compose_job([*fixed, *hydra], with_hydra=True).hydra, task
    except ConfigError as first_error:
        groups_here = set(groups())
        forced = {raw: f"++{raw}" for raw, ov in zip(task, parsed) if not ov.is_sweep_override()
                  and type_prefix(raw) is None and "." in ov.key_or_group and ov.key_or_group not in groups_here}
        if not forced:
            raise first_error
        try:
            cfg = compose_job([forced.get(raw, raw) for raw in fixed] + hydra, with_hydra=True).hydra
        except ConfigError:
            raise first_error from None
        return cfg, [forced.get(raw, raw) for raw in task]


def _resumable(sweep_dir: Path, user_dir: bool) -> None:
    if not user_dir:
        raise ConfigError("hydra.sweeper.resume", True,
                          "with hydra.sweep.dir=<the sweep folder to resume> (or `trainlab resume-sweep SWEEP_DIR`)")
    if not sweep_dir.is_dir():
        raise ConfigError("hydra.sweep.dir", str(sweep_dir), "an existing sweep folder to resume")


def _planned_jobs(hydra_cfg, task: list[str], grid: list[list[str]], user_dir: bool) -> list[list[str]]:
    """Every job trainlab's sweeper will launch (the pending ones when resuming); for
    another sweeper, which samples its own jobs, the grid part that can be known now."""
    from trainlab.sweep.resume import pending_jobs
    from trainlab.sweep.runs import find_job_dirs
    from trainlab.sweep.search import plan_sweep

    sweeper = hydra_cfg.sweeper
    if str(sweeper.get("_target_", "")).endswith("OptunaSweeper"):
        from importlib.util import find_spec

        if find_spec("optuna") is None:
            raise ConfigError("hydra/sweeper", "optuna", "an installed optuna (pip install 'trainlab[search]')")
        if sweeper.get("resume"):
            sweep_dir = Path(str(hydra_cfg.sweep.dir))
            _resumable(sweep_dir, user_dir)
            if not sweeper.get("storage") and not (sweep_dir / "optuna.db").is_file():  # a new study would
                raise ConfigError("hydra.sweep.dir", str(sweep_dir),  # number its trials' jobs from 0 again
                                  "an optuna sweep folder holding its study, optuna.db (or hydra.sweeper.storage=URL)")
    if sweeper.get("_target_") != SWEEPER:
        return grid
    params = [f"{k}={v}" for k, v in (sweeper.params or {}).items()]
    parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
    try:
        parsed = parser.parse_overrides([*params, *task])
    except Exception as err:
        raise ConfigError("hydra.sweeper.params", " ".join(params), str(err).splitlines()[0]) from None
    jobs = plan_sweep(parsed, sweeper.n_trials, sweeper.seed).jobs
    for job in jobs[:MAX_COMBINATIONS]:
        for override in job:
            check_group_choice(_key(override), [override.partition("=")[2]])
    sweep_dir = Path(str(hydra_cfg.sweep.dir))
    if not sweeper.resume:
        if user_dir and sweep_dir.is_dir() and find_job_dirs(sweep_dir):
            raise ConfigError("hydra.sweep.dir", str(sweep_dir), "a new folder: this one holds a sweep "
                              f"(`trainlab resume-sweep {sweep_dir}` finishes it)")
        return jobs
    _resumable(sweep_dir, user_dir)
    ignored = set(hydra_cfg.job.config.override_dirname.exclude_keys)
    return [jobs[i] for i in pending_jobs(sweep_dir, jobs, ignored)]
