"""Data-parallel training across processes with torch.distributed (launched by torchrun,
srun, or Hydra's submitit launcher with several tasks per job).

Each process (rank) holds a full model replica wrapped in DistributedDataParallel,
which averages gradients across ranks after every backward. Every rank draws the
same seeded permutation and takes its own slice of each global batch, so the
ranks' batches are disjoint and together equal one batch of world × batch_size:
`trainer.batch_size` is per process. Dropout and augmentation draw from per-rank
seeds (trainlab.engine.run), so ranks do not repeat each other's masks.
Rank 0 alone writes the run folder.
"""
import os
import random
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = DistInfo(0, 1, 0)


def env_info() -> DistInfo:
    """Rank and world size from torchrun's variables, else from the SLURM or submitit job this
    process is one task of (a job with several tasks: srun, or Hydra's submitit launcher)."""
    env = os.environ
    if "RANK" in env and "WORLD_SIZE" in env:
        return DistInfo(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0)))
    job = job_environment()
    if job is not None and job.num_tasks > 1:
        return DistInfo(job.global_rank, job.num_tasks, job.local_rank)
    if int(env.get("SLURM_STEP_NUM_TASKS", "1")) > 1 and "SLURM_PROCID" in env:  # srun without submitit installed
        return DistInfo(int(env["SLURM_PROCID"]), int(env["SLURM_STEP_NUM_TASKS"]), int(env.get("SLURM_LOCALID", 0)))
    return SINGLE


def job_environment():
    """submitit's description of the job this process runs in, or None: inside a job that submitit
    started (SLURM or its local executor; they set SUBMITIT_EXECUTOR), or a task of a plain srun.
    Not the batch script of `sbatch --ntasks=N` itself: it has SLURM_NTASKS=N and SLURM_PROCID=0 but is
    one process (waiting for N-1 ranks that never come); only an srun step (SLURM_STEP_ID) runs N tasks."""
    env = os.environ
    if not env.get("SUBMITIT_EXECUTOR") and not ("SLURM_JOB_ID" in env and "SLURM_PROCID" in env
                                                 and "SLURM_STEP_ID" in env):
        return None  # the usual case, decided without importing submitit
    try:
        import submitit
        from submitit.slurm.slurm import SlurmJobEnvironment
    except ImportError:
        return None
    if env.get("SUBMITIT_EXECUTOR"):
        try:
            return submitit.JobEnvironment()
        except RuntimeError:  # an executor this submitit does not know
            return None
    return SlurmJobEnvironment()


def _rendezvous() -> dict[str, str]:
    """Where the ranks of a SLURM / submitit job meet: the job's first node, on a port derived from
    the job id, so the nodes of a multi-node job find rank 0 and two jobs sharing a node do not collide.
    submitit's TorchDistributedEnvironment computes both (it keeps a MASTER_PORT the user exported)."""
    env = os.environ
    if env.get("SUBMITIT_EXECUTOR"):
        from submitit.helpers import TorchDistributedEnvironment

        tde = TorchDistributedEnvironment()
        return {"MASTER_ADDR": tde.master_addr, "MASTER_PORT": str(tde.master_port)}
    job = job_environment()  # srun without submitit's launcher: the same rule from SLURM's variables
    if job is not None:
        port = env.get("MASTER_PORT") or str(random.Random(job.job_id).randint(20000, 60000))
        return {"MASTER_ADDR": job.hostnames[0], "MASTER_PORT": port}
    # srun without submitit installed: nothing parses SLURM's node list, so one node unless told
    if int(env.get("SLURM_JOB_NUM_NODES", "1")) > 1 and "MASTER_ADDR" not in env:
        from trainlab.errors import ConfigError

        raise ConfigError("SLURM_JOB_NUM_NODES", env["SLURM_JOB_NUM_NODES"], "1, or install submitit "
                          "(pip install 'trainlab[launchers]') or export MASTER_ADDR to find the first node")
    return {"MASTER_ADDR": env.get("MASTER_ADDR", "127.0.0.1"),
            "MASTER_PORT": env.get("MASTER_PORT") or str(20000 + int(env.get("SLURM_JOB_ID", "0")) % 40000)}


def init(device_name: str = "auto") -> DistInfo:
    """Join the process group when launched with several processes; a no-op for one."""
    info = env_info()
    if info.world == 1 or dist.is_initialized():
        return info
    env = os.environ
    if not ("RANK" in env and "WORLD_SIZE" in env):  # torchrun sets all four; a SLURM / submitit job none
        env.update(_rendezvous(), RANK=str(info.rank), WORLD_SIZE=str(info.world), LOCAL_RANK=str(info.local_rank))
    use_cuda = torch.cuda.is_available() and device_name != "cpu"
    if use_cuda:
        # by local rank among the GPUs this process sees: all of the node's, or the one SLURM bound to the task
        torch.cuda.set_device(info.local_rank % torch.cuda.device_count())
    dist.init_process_group("nccl" if use_cuda else "gloo")
    return info


_CPU_GROUP = None


def cpu_group():
    """A gloo group over all ranks for small host-side votes, whatever the training backend (NCCL):
    they then never wait on the GPU. Created on first use, which every rank reaches at the same point."""
    global _CPU_GROUP
    if _CPU_GROUP is None:
        _CPU_GROUP = dist.new_group(backend="gloo")
    return _CPU_GROUP


def rank_seed(seed: int, rank: int, *more: int) -> int:
    """An independent seed for `rank` of a run seeded with `seed` (numpy's SeedSequence spawns streams)."""
    return int(np.random.SeedSequence([seed, rank, *more]).generate_state(1, np.uint64)[0])


def current() -> DistInfo:
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return SINGLE


def device_for(info: DistInfo, device: torch.device) -> torch.device:
    """Each rank on its own GPU (by local rank); CPU ranks share the CPU."""
    if device.type == "cuda" and info.world > 1:
        return torch.device("cuda", info.local_rank % torch.cuda.device_count())
    return device


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if current().world > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def broadcast_object(obj):
    """Rank 0's value of a picklable object, on every rank."""
    if current().world == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_object(obj) -> list | None:
    """Every rank's value of a picklable object, as a list indexed by rank on rank 0 (None elsewhere)."""
    info = current()
    if info.world == 1:
        return [obj]
    out = [None] * info.world if info.is_main else None
    dist.gather_object(obj, out, dst=0, group=cpu_group())
    return out


class FlagVote:
    """Ranks agree on a few flags (which signals reached any of them) after the same step, without
    blocking the step loop. At a vote step each rank posts its flags in an asynchronous all-reduce
    (MAX) on the CPU gloo group, and reads the vote it posted at the previous vote step: every rank
    sees the same result after the same step. A vote costs up to ~1 ms of CPU on a busy machine, so
    votes are about EVERY_S seconds apart: rank 0 proposes the spacing (in steps) inside each vote,
    and every rank counts the same steps."""

    EVERY_S = 0.2
    MAX_GAP = 10_000

    def __init__(self, size: int):
        self.group, self.is_main = cpu_group(), current().is_main
        self.agreed = [0] * size
        self.pending = None       # (work, tensor) of the vote in flight
        self.gap, self.steps = 1, 0
        self.clock = time.monotonic()

    def _post(self, flags: list[int], blocking: bool = False):
        proposal = 0
        if self.is_main:  # steps per EVERY_S, from the time per step since the last vote
            now = time.monotonic()
            per_step = (now - self.clock) / max(self.steps, 1)
            self.clock = now
            proposal = max(1, min(self.MAX_GAP, int(self.EVERY_S / max(per_step, 1e-9))))
        votes = torch.tensor([*flags, proposal], dtype=torch.int64)
        work = dist.all_reduce(votes, dist.ReduceOp.MAX, group=self.group, async_op=not blocking)
        self.steps = 0
        if blocking:
            self._read(votes)
        else:
            self.pending = (work, votes)

    def _read(self, votes: torch.Tensor) -> None:
        *flags, self.gap = votes.tolist()
        self.agreed = [max(a, f) for a, f in zip(self.agreed, flags)]

    def _collect(self) -> None:
        if self.pending is not None:
            work, votes = self.pending
            work.wait()
            self.pending = None
            self._read(votes)

    def after_step(self, flags: list[int]) -> list[int]:
        """The agreed flags, updated at vote steps only (the same steps on every rank)."""
        self.steps += 1
        if self.steps >= self.gap and not any(self.agreed):
            self._collect()
            if not any(self.agreed):
                self._post(flags)
        return self.agreed

    def settle(self, flags: list[int]) -> list[int]:
        """The final word now, nothing left in flight: a blocking vote (at epoch boundaries)."""
        self._collect()
        if not any(self.agreed):
            self._post(flags, blocking=True)
        return self.agreed

    def close(self) -> None:
        self._collect()


def barrier() -> None:
    if current().world > 1:
        dist.barrier()


def wrap(model: torch.nn.Module, device: torch.device):
    """The module the training step calls: DDP on several ranks, the model itself otherwise."""
    if current().world == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)
