"""Data-parallel training across processes with torch.distributed (launched by torchrun or SLURM).

Each process (rank) holds a full model replica wrapped in DistributedDataParallel,
which averages gradients across ranks after every backward. Every rank draws the
same seeded permutation and takes its own slice of each global batch, so the
ranks' batches are disjoint and together equal one batch of world × batch_size:
`trainer.batch_size` is per process. Rank 0 alone writes the run folder.
"""
import os
from dataclasses import dataclass

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
    """Rank and world size from torchrun's variables, else SLURM's (srun with several tasks)."""
    env = os.environ
    if "RANK" in env and "WORLD_SIZE" in env:
        return DistInfo(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0)))
    if int(env.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in env:
        return DistInfo(int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"]), int(env.get("SLURM_LOCALID", 0)))
    return SINGLE


def init(device_name: str = "auto") -> DistInfo:
    """Join the process group when launched with several processes; a no-op for one."""
    info = env_info()
    if info.world == 1 or dist.is_initialized():
        return info
    env = os.environ
    env.setdefault("MASTER_ADDR", "127.0.0.1")
    env.setdefault("MASTER_PORT", "29500")
    env.setdefault("RANK", str(info.rank))
    env.setdefault("WORLD_SIZE", str(info.world))
    use_cuda = torch.cuda.is_available() and device_name != "cpu"
    if use_cuda:
        torch.cuda.set_device(info.local_rank % torch.cuda.device_count())
    dist.init_process_group("nccl" if use_cuda else "gloo")
    return info


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


def rank_args(args: list[str], info: DistInfo) -> list[str]:
    """`trainlab train` arguments for this rank of a torchrun launch: one run folder for all.

    Rank 0 resolves the run folder (its timestamp would differ per process) and
    broadcasts it; the other ranks write neither Hydra's `.hydra/` nor a log file.
    """
    from trainlab.errors import ConfigError

    if "-m" in args or "--multirun" in args:
        raise ConfigError("-m", "multirun", "a single run under torchrun (launch a sweep of torchrun jobs instead)")
    run_dir = None
    if info.is_main:
        run_dir = next((a.split("=", 1)[1] for a in args if a.startswith("hydra.run.dir=")), None) or _resolve_run_dir(args)
    run_dir = broadcast_object(run_dir)
    extra = [f"hydra.run.dir={run_dir}"]
    if not info.is_main:
        extra += ["hydra.output_subdir=null", "hydra/job_logging=disabled"]
    return [a for a in args if not a.startswith("hydra.run.dir=")] + extra


def _resolve_run_dir(args: list[str]) -> str:
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    overrides = [a for a in args if not a.startswith("-")]
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module("trainlab.conf", version_base=None):
            cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
            return str(OmegaConf.select(cfg, "hydra.run.dir"))
    finally:
        GlobalHydra.instance().clear()
