"""A job that SLURM requeues (`scontrol requeue`, preemption with PreemptMode=REQUEUE) gets SIGTERM,
like a cancelled one: training stops after its step and saves last.pt either way (signals.py). What
differs is what comes next. A requeued job starts again in the same folder and resumes; inside a
submitit job it must then leave WITHOUT a result, as submitit's own requeue does (sys.exit(-1)):
a result would tell the waiting sweep that this job is over (`interrupted`), while its next attempt
is still to come. A cancelled job returns its `interrupted` result as usual.

Told apart by asking slurmctld: while a requeue kills the job, `scontrol show job` already counts
the restart (Restarts is one more than this attempt's SLURM_RESTART_COUNT); a cancel does not.
"""
import logging
import os
import re
import subprocess

log = logging.getLogger("trainlab")


def being_requeued() -> bool:
    """Is SLURM requeueing the job this process runs in? False outside SLURM or when scontrol cannot say."""
    job_id = os.environ.get("SLURM_JOB_ID")
    if not job_id:
        return False
    try:
        out = subprocess.run(["scontrol", "show", "job", "--oneliner", job_id], capture_output=True, text=True,
                             timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    restarts = re.search(r"\bRestarts=(\d+)", out)
    return restarts is not None and int(restarts.group(1)) > int(os.environ.get("SLURM_RESTART_COUNT") or 0)


def leave_if_requeued() -> None:
    """In a submitit job that SLURM is requeueing: exit without a result (the run is saved already)."""
    if os.environ.get("SUBMITIT_EXECUTOR") != "slurm" or not being_requeued():
        return
    log.info("SIGTERM: SLURM is requeueing this job; its next attempt resumes from checkpoints/last.pt")
    raise SystemExit(-1)
