"""trainer.threads: how many intra-op threads a run's torch uses.

torch's default is every core of the machine, in every process. When a launcher runs
several jobs at once (joblib n_jobs, several DDP ranks per node), each process then
spreads over all cores, and the processes preempt each other's threads: a 2-core
machine measured a training step 11x slower with two such processes than with one
thread each. `auto` gives each process its share: the cores this process may use,
divided by the jobs running at once on the machine, at least 1, and no more threads than the
training step's size keeps busy (`threads_for_step`). No torch import here.
"""
import os

from trainlab.errors import ConfigError


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def ranks_per_node() -> int:
    """Processes of one DDP job on this machine (torchrun, srun, a multi-task submitit job)."""
    env = os.environ
    for key in ("LOCAL_WORLD_SIZE", "SLURM_NTASKS_PER_NODE"):
        value = (env.get(key) or "").split("(")[0]  # SLURM may write "2(x3)"
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1


def launcher_jobs(launcher) -> int:
    """Jobs a Hydra launcher runs at once on this machine: joblib's n_jobs (-1: one per core), else 1."""
    n_jobs = getattr(launcher, "n_jobs", None) if launcher is not None else None
    if not isinstance(n_jobs, int) or n_jobs == 0:
        return 1
    return available_cores() if n_jobs < 0 else n_jobs


# The training step, in floating-point operations, that keeps one more intra-op thread busy: below
# it the threads' synchronisation costs more than the split work saves. Measured on the project's
# 2-core machine, idle, 2026-12-07 (one step's time at 2 threads / at 1, forward and backward with
# SGD): 0.03-0.24 GFLOP per step (the digits MLP and CNN, MNIST MLP batch 128) 1.45-3.3x slower on
# two threads; 0.36 GFLOP 0.95x; 0.41-0.77 GFLOP 0.78-0.91x; 1.2-15 GFLOP 0.53-0.66x.
FLOPS_PER_THREAD = 0.35e9


def threads_for_step(share: int, step_flops: float) -> int:
    """trainer.threads=auto once the model is built: this process's `share` of the cores, but only as
    many threads as a step of `step_flops` operations keeps busy (at least 1)."""
    return max(1, min(share, 1 + int(step_flops // FLOPS_PER_THREAD)))


def resolve_threads(setting, jobs_at_once: int = 1) -> int:
    """The thread count for trainer.threads=`setting` (auto or a positive integer)."""
    if setting == "auto":
        return max(1, available_cores() // max(1, jobs_at_once * ranks_per_node()))
    if isinstance(setting, bool) or not isinstance(setting, int) or setting < 1:
        raise ConfigError("trainer.threads", setting, "auto or an integer >= 1")
    return setting
