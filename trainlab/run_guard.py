"""Guards for `trainlab train` aimed at a folder that already holds a run.

They run before Hydra starts, because Hydra rewrites `.hydra/` and appends to
the log in its output folder as soon as a job begins: a refused resume must
leave the existing run exactly as it was.

One exception: a job that SLURM started again (requeued after preemption or a
node failure; SLURM_RESTART_COUNT > 0) continues the run it began in that folder,
as with resume=true (trainlab.app), or starts it over when it left no checkpoint.
"""
import os
from pathlib import Path

from trainlab.errors import ConfigError


def _override(overrides: list[str], key: str) -> str | None:
    for o in overrides:
        k, _, v = o.lstrip("+").partition("=")
        if k == key:
            return v
    return None


def requeued() -> bool:
    """This process belongs to a SLURM job that was started again (SLURM counts the restarts)."""
    return (os.environ.get("SLURM_RESTART_COUNT") or "0").strip() not in ("", "0")


def holds_run(folder: Path) -> bool:
    return (folder / "summary.json").exists() or (folder / "checkpoints" / "last.pt").exists()


def check_writable(key: str, folder: str) -> None:
    """The output folder can be created and written: checked before Hydra tries to."""
    import os

    path = Path(folder).expanduser().absolute()
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(key, folder, f"a writable folder ({probe} is not a writable directory)")


def guard_existing_run(args: list[str]) -> None:
    overrides = [a for a in args if not a.startswith("-")]
    multirun = "-m" in args or "--multirun" in args
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    check_writable(key, _override(overrides, key) or "outputs")
    target = _override(overrides, "hydra.run.dir")
    if target is None or not holds_run(Path(target)):
        return
    resume = (_override(overrides, "resume") or "false").lower() == "true"
    last = Path(target) / "checkpoints" / "last.pt"
    if not resume and requeued():
        if not last.is_file():
            return  # the first attempt left no checkpoint: the job starts over (trainlab.app)
        resume = True
    if not resume:
        raise ConfigError("hydra.run.dir", target, "a new folder: this one holds a run (use `trainlab resume` to continue it)")
    if not last.is_file():
        raise ConfigError("resume", target, "a run folder holding checkpoints/last.pt")
    _check_resume_conflicts(last, [o for o in overrides if not o.startswith("hydra.")])


def _check_resume_conflicts(last: Path, overrides: list[str]) -> None:
    from hydra import compose
    from trainlab.compose import hydra_session
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from trainlab.engine import checkpoint as ckpt
    from trainlab.engine.run import config_conflicts

    saved = ckpt.load(last).get("config") or {}
    GlobalHydra.instance().clear()
    try:
        with hydra_session():
            current = OmegaConf.to_container(compose(config_name="train", overrides=overrides), resolve=True)
    except Exception:
        return  # the composition error itself is reported by the regular checks that follow
    finally:
        GlobalHydra.instance().clear()
    conflicts = config_conflicts(saved, current)
    if conflicts:
        raise ConfigError("resume", str(last.parent.parent), "the run's own configuration; these keys differ from its "
                          "checkpoint: " + ", ".join(conflicts))
