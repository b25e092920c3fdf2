"""summary.json: the machine-readable result of a run."""
import json
import math
import platform
from pathlib import Path

from trainlab.provenance import git_state


def versions() -> dict:
    """The versions that produced a result. torchvision's is read from its metadata: a run that
    uses no torchvision model or dataset does not import it (about 0.15 s) just to say which."""
    from importlib.metadata import PackageNotFoundError, version

    import hydra
    import torch

    import trainlab

    try:
        torchvision = version("torchvision")
    except PackageNotFoundError:
        torchvision = None
    return {"trainlab": trainlab.__version__, "python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision, "hydra": hydra.__version__,
            "cuda": torch.version.cuda if torch.cuda.is_available() else None}


def _clean(value):
    """JSON has no NaN/inf: write them as strings so the file stays valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_summary(path: Path, summary: dict) -> None:
    import errno

    from trainlab.errors import DiskFull

    tmp = path.with_suffix(".json.tmp")
    try:
        tmp.write_text(json.dumps(_clean(summary), indent=2) + "\n")
        tmp.replace(path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise DiskFull(path) if err.errno in (errno.ENOSPC, errno.EDQUOT) else err from None




def peak_rss_mb() -> float:
    """The process's peak resident memory so far (for sweeps: flat across jobs means no leak)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def process_age_s() -> float | None:
    """Seconds since this process started (Linux: /proc), or None where that cannot be read."""
    import os
    import time

    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started_ticks = int(fields[19])  # field 22 of proc(5): start time after boot, in clock ticks
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        return round(time.time() - (boot + started_ticks / os.sysconf("SC_CLK_TCK")), 3)
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def diverged_at_step(step_losses: list[float]) -> int | None:
    """The first optimizer step (1-based, as in metrics.csv) whose loss was not finite."""
    for i, value in enumerate(step_losses):
        if not math.isfinite(value):
            return i + 1
    return None


def run_summary(run, rows: list[dict], test: dict | None, device) -> dict:
    """summary.json of a run that trained (completed, diverged or interrupted)."""
    import signal

    from trainlab.nn.archs import count_parameters

    final = rows[-1] if rows else None
    c = run.counters
    return {
        "status": run.status,
        "diverged_at_step": diverged_at_step(run.step_losses) if run.status == "diverged" else None,
        "skipped_steps": c.skipped_steps,
        "signal": signal.Signals(run.stop_signal).name if run.stop_signal else None,
        "run_dir": str(run.run_dir),
        "seed": run.spec.seed,
        "tags": list(run.spec.tags),
        "git": git_state(),                       # the commit that trained it, and whether files had changed
        "overrides": run.overrides,
        "epochs_run": c.epoch,
        "steps": c.step,
        "stopped_early": c.stopped_early,
        "best": {"epoch": c.best_epoch, "step": c.best_step, "val_loss": c.best_val_loss, "val_acc": c.best_val_acc,
                 "monitor": run.trainer.monitor} if c.best_value is not None else None,
        "final": {k: final.get(k, math.nan) for k in ("epoch", "step", "lr", "train_loss", "train_penalty", "train_acc",
                                                      "val_loss", "val_acc", "train_eval_loss", "train_eval_acc")}
        if final else None,
        "test": test,
        "wall_time_s": round(run.elapsed(), 3),   # training and evaluation, summed over sessions
        "setup_s": round(run.setup_s, 3),         # this session's assembly: data, preprocessing, model
        "process_s": process_age_s(),             # since this process started (imports, composing, earlier jobs)
        "threads": run.threads,
        "error": None,
        "device": str(device),
        "peak_rss_mb": peak_rss_mb(),
        "num_params": count_parameters(run.components.model),
        "versions": versions(),
    }


def failure_summary(run_dir: Path, cfg, overrides, started: float, err: BaseException) -> dict:
    """summary.json of a run that failed (or was hard-interrupted) before it could finish."""
    import time

    stopped = isinstance(err, KeyboardInterrupt)
    return {"status": "interrupted" if stopped else "failed", "run_dir": str(run_dir),
            "signal": getattr(err, "signal_name", "SIGINT") if stopped else None,
            "seed": cfg.get("seed"), "tags": _tags(cfg), "git": git_state(), "overrides": list(overrides or []), "error": f"{type(err).__name__}: {err}",
            "best": None, "final": None, "test": None, "wall_time_s": round(time.time() - started, 3),
            "diagnosis": [], "versions": versions()}


def _tags(cfg) -> list:
    """The tags of a config that may not have passed validation: whatever list it holds."""
    tags = cfg.get("tags") if hasattr(cfg, "get") else None
    try:
        return [str(t) for t in tags] if tags is not None and not isinstance(tags, str) else ([tags] if tags else [])
    except TypeError:
        return []
