"""Resuming a sweep in its own folder, and reading how its jobs ended.

A resumed sweep plans the same jobs again (trainlab.sweep.search), keeps
every job whose folder already holds a result, and launches the others under
their old numbers, so folders and the table's job order stay stable:

    completed, diverged    kept: divergence is a finding about the configuration, rerunning repeats it
    failed, interrupted,   run again; the job continues from its checkpoints/last.pt when it has one
    missing, not started   (the job itself decides that, see trainlab.app.job)

A job is the same job when its number and its overrides agree with the
folder's, ignoring the keys Hydra leaves out of folder names
(`hydra.job.config.override_dirname.exclude_keys`: device, progress, ...), so
a sweep can be resumed on another machine or with other launcher settings.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from trainlab.errors import ConfigError
from trainlab.sweep.runs import RunRecord, find_job_dirs, load_job, parse_override

KEPT = ("completed", "diverged")
# Written by a run; a job started again from scratch must not append to or inherit them.
RESULT_FILES = ("metrics.csv", "summary.json", "curves.png", "checkpoints/best.pt")


def job_records(sweep_dir: Path) -> list[RunRecord]:
    """The job folders of a sweep in job-number order ([] when there are none yet)."""
    if not sweep_dir.is_dir():
        return []
    records = [load_job(d) for d in find_job_dirs(sweep_dir)]
    return sorted(records, key=lambda r: (r.job is None, r.job or 0, r.name))


def identity(overrides, ignored: set[str]) -> dict[str, str]:
    """What makes a job this job: its overrides as key -> value, minus the ignored keys."""
    pairs = (parse_override(o) for o in overrides) if isinstance(overrides, list) else overrides.items()
    return {k: v for k, v in pairs if k not in ignored and not k.startswith("hydra.")}


def pending_jobs(sweep_dir: Path, jobs: list[list[str]] | dict[int, list[str]], ignored: set[str],
                 kept: tuple[str, ...] = KEPT) -> list[int]:
    """Numbers of the planned `jobs` (a list indexed by job number, or number -> overrides) that
    have to run (again) in `sweep_dir`: those without a folder whose status is in `kept`.

    Raises a one-line ConfigError when the folder holds a different sweep: a job
    number whose recorded overrides differ from the planned ones.
    """
    done = {r.job: r for r in job_records(sweep_dir) if r.job is not None}
    pending = []
    for num, job in (jobs.items() if isinstance(jobs, dict) else enumerate(jobs)):
        record = done.get(num)
        if record is None:
            pending.append(num)
            continue
        planned, recorded = identity(job, ignored), identity(record.overrides, ignored)
        if planned != recorded:
            raise ConfigError(
                "hydra.sweep.dir", str(sweep_dir),
                f"its job {num} ran {_text(recorded)} but this sweep's job {num} is {_text(planned)}; "
                "resume a sweep with the overrides it was started with (`trainlab resume-sweep SWEEP_DIR`)")
        if record.status not in kept:
            pending.append(num)
    return pending


def _text(overrides: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in overrides.items()) or "no overrides"


def clear_results(run_dir: Path) -> None:
    """Remove an earlier attempt's results (it left no checkpoint) before a resumed sweep's
    job starts from scratch in its folder; train.log is kept: it holds that attempt's traceback."""
    for name in RESULT_FILES:
        (run_dir / name).unlink(missing_ok=True)


def outcomes(sweep_dir: Path) -> list[dict]:
    """How each job of a sweep folder ended, read from its summary.json: the CLI's view
    of jobs that ran in other processes (joblib, submitit), where it has no other."""
    found = []
    for record in job_records(sweep_dir):
        error = record.summary.get("error")
        if record.status == "missing":  # the process died before the job could record anything
            error = "no summary.json: the job's process ended before it recorded a result"
        kind = "config" if isinstance(error, str) and error.startswith("ConfigError") else "exception"
        status = "failed" if record.status == "missing" else record.status
        found.append({"run_dir": str(record.path), "status": status, "error": error, "kind": kind,
                      "sweep_dir": str(sweep_dir)})
    return found


def resume_sweep_args(sweep_dir: Path, extra: list[str]) -> list[str]:
    """`trainlab train` arguments that resume the sweep in `sweep_dir`: the overrides it
    was started with (from its multirun.yaml), then `extra` (which replace same keys)."""
    recorded = sweep_dir / "multirun.yaml"
    if not recorded.is_file():
        raise ConfigError("SWEEP_DIR", str(sweep_dir),
                          "a sweep folder holding multirun.yaml (Hydra writes it when a sweep starts)")
    try:
        overrides = (yaml.safe_load(recorded.read_text()) or {})["hydra"]["overrides"]
        task, hydra = list(overrides["task"] or []), list(overrides["hydra"] or [])
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as err:  # ValueError: not UTF-8 text
        raise ConfigError("SWEEP_DIR", str(sweep_dir), f"its multirun.yaml is unreadable ({type(err).__name__})")
    # the folder and the resume flag are set below; the run mode comes from -m
    dropped = ("hydra.mode", "hydra.sweep.dir", "hydra.sweeper.resume")
    hydra = [o for o in hydra if parse_override(o)[0] not in dropped]
    new_keys = {parse_override(o)[0] for o in extra}
    kept = [o for o in [*task, *hydra] if parse_override(o)[0] not in new_keys]
    return ["-m", *kept, *extra, f"hydra.sweep.dir={quote(str(sweep_dir))}", "hydra.sweeper.resume=true"]


def quote(value: str) -> str:
    """A Hydra override value that is taken literally (paths may hold , = [ ])."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
