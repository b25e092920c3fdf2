"""The one owner of a run (or sweep) folder: whether a run starts, continues or is refused
there, and the lock that keeps a second process from writing into it at the same time.

Decided before Hydra writes `.hydra/` or the log into the folder, so a refused run leaves an
existing folder exactly as it was. The decision is made once per run: by the CLI for a
single run, by the job itself for a sweep job (launchers may run it in another process).
The checkpoint read for the decision is handed to the run, not read a second time.
"""
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from trainlab.errors import ConfigError

log = logging.getLogger("trainlab")

# Keys a resumed run may not change: they define the experiment (data, model, objective, optimizer kind).
FIXED_ON_RESUME = ["seed", "dataset.name", "dataset.val_split", "dataset.subset", "dataset.split_seed", "dataset.cv",
                   "preprocess", "arch", "activation", "init", "norm", "loss", "optimizer.name", "regularizer",
                   "augment", "trainer.batch_size"]


def holds_run(folder: Path) -> bool:
    """A run was here: its result, its checkpoint, or the metrics rows of one killed before either
    (a job SIGKILLed before its first last.pt; starting over there must not append to its rows)."""
    return any((folder / name).exists() for name in ("summary.json", "checkpoints/last.pt", "metrics.csv"))


def stopped_before_checkpoint(folder: Path) -> bool:
    """A run folder whose run was stopped (a signal) or failed before it wrote checkpoints/last.pt:
    `trainlab resume` starts it again from scratch. A completed run without checkpoints
    (trainer.save_checkpoints=false) is not: there is nothing left to do."""
    import json

    from trainlab.app.run_record import recorded_overrides

    if recorded_overrides(folder) is None or (folder / "checkpoints" / "last.pt").exists():
        return False
    try:
        status = json.loads((folder / "summary.json").read_text()).get("status")
    except FileNotFoundError:
        return True  # killed before it could write its summary
    except (OSError, ValueError):
        return False
    return status in ("interrupted", "failed")


def requeued() -> bool:
    """This process belongs to a SLURM job that was started again (SLURM counts the restarts)."""
    return (os.environ.get("SLURM_RESTART_COUNT") or "0").strip() not in ("", "0")


def check_writable(key: str, folder: str) -> None:
    """The output folder can be created and written: checked before anything tries to."""
    from trainlab.app.run_record import check_path_fits, existing_ancestor

    path = Path(folder).expanduser().absolute()
    probe = existing_ancestor(path)
    check_path_fits(key, folder, path, probe)
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK) or not _can_create_in(probe):
        raise ConfigError(key, folder, f"a writable folder ({probe} is not a writable directory)")


def _can_create_in(folder: Path) -> bool:
    """Try it: access() says yes to root on a read-only mount, and /proc takes no new folder."""
    import tempfile

    try:
        os.rmdir(tempfile.mkdtemp(prefix=".trainlab-probe-", dir=folder))
        return True
    except OSError:
        return False


@dataclass
class Decision:
    resume_state: dict | None  # last.pt's content when the run continues, None when it starts
    why: str = ""              # how it came to continue or start over (for the log)


def decide(run_dir: Path, resume: bool, config: dict, restartable: str = "") -> Decision:
    """Start, continue or refuse a run in `run_dir`, with the run's resolved `config`.

    - resume=true: continue from checkpoints/last.pt, refused when the experiment-defining
      keys (FIXED_ON_RESUME) differ from the checkpoint's;
    - a folder that holds no run: start;
    - a folder holding a run: refused, unless `restartable` says why this job may find its own
      earlier attempt there (a resumed sweep, a requeued SLURM job): it then continues from
      last.pt, or starts over without the attempt's files when it left no checkpoint.
    """
    from trainlab.engine import group_commit

    run_dir = Path(run_dir)
    group_commit.recover(run_dir)  # a stacked group killed while writing its checkpoints: one common step
    last = run_dir / "checkpoints" / "last.pt"
    if not resume and not holds_run(run_dir) and not last.is_file():
        return Decision(None)  # a new run: decided without loading torch
    from trainlab.engine import checkpoint as ckpt
    from trainlab.engine.history_check import check_resumable

    if resume:
        if not last.is_file() and stopped_before_checkpoint(run_dir):
            from trainlab.sweep.resume import clear_results

            clear_results(run_dir)
            log.warning(f"{run_dir} holds no checkpoint (stopped before its first one): starting it again from scratch")
            return Decision(None, "resume=true, no checkpoint yet")
        if not last.is_file():
            raise ConfigError("resume", str(run_dir), "a run folder holding checkpoints/last.pt")
        state = ckpt.load(last)
        conflicts = config_conflicts(state.get("config") or {}, config)
        if conflicts:
            raise ConfigError("resume", str(run_dir), "the run's own configuration; these keys differ from its "
                              "checkpoint: " + ", ".join(conflicts))
        check_resumable(run_dir, state)
        return Decision(state, "resume=true")
    if not restartable:
        raise ConfigError("hydra.run.dir", str(run_dir), "a new folder: this one holds a run "
                          "(use `trainlab resume` to continue it)")
    if last.is_file():
        log.info(f"resuming from {last} ({restartable})")
        state = ckpt.load(last)
        check_resumable(run_dir, state)
        return Decision(state, restartable)
    from trainlab.sweep.resume import clear_results

    clear_results(run_dir)
    return Decision(None, restartable)


def config_conflicts(saved: dict, current: dict) -> list[str]:
    """Dotted keys among FIXED_ON_RESUME whose values differ between a checkpoint and the new config."""
    out = []
    for key in FIXED_ON_RESUME:
        a, b = _lookup(saved, key), _lookup(current, key)
        if a != b:
            out.append(f"{key} ({a!r} in the checkpoint, {b!r} now)")
    return out


def _lookup(tree: dict, dotted: str):
    node = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def refused_before_training(outcomes: list[dict], run_dir: Path) -> bool:
    """A single new run refused for bad input found once its data or model was built (a CV fold
    count the data cannot give, a device-side problem, a broken image), before any checkpoint."""
    return (len(outcomes) == 1 and outcomes[0]["status"] == "failed" and outcomes[0].get("kind") == "config"
            and not (Path(run_dir) / "checkpoints" / "last.pt").exists())


def remove_new_folders(created: list[Path]) -> None:
    """Remove a run folder this process created (the whole tree), then its new parents if empty:
    bad input leaves the outputs tree as it found it."""
    import shutil

    shutil.rmtree(created[0], ignore_errors=True)
    for parent in created[1:]:
        try:
            parent.rmdir()
        except OSError:  # another run started there meanwhile
            break


def check_run_dir(key: str, run_dir: Path) -> None:
    """A run writes train.log, .hydra/ and checkpoints/ into its folder: that folder must be its own.
    Refused: the working directory or one above it (`hydra.run.dir=` or `=.`), and any folder inside
    another run's folder (`<run>/checkpoints`)."""
    check_writable(key, str(run_dir))
    path, cwd = Path(run_dir).absolute().resolve(), Path.cwd().resolve()
    if path == cwd or path in cwd.parents:
        raise ConfigError(key, str(run_dir), "a folder of the run's own below the working directory, e.g. "
                          "outputs/runs/<name> (not the working directory or one above it)")
    for parent in path.parents:
        if (parent / ".hydra").is_dir() or holds_run(parent):
            raise ConfigError(key, str(run_dir), f"a folder outside another run's folder ({parent} holds a run)")
