"""What the SLURM cluster this command submits to offers, asked from its own tools (sinfo, scontrol),
and the launcher checks only a real cluster can answer: a partition it does not have, more CPUs,
memory or GPUs per node than its nodes hold. Each is one ConfigError before any folder is made,
instead of an `sbatch: error:` traceback after the sweep folder was created.

Also: whether the cluster keeps accounting (sacct works only with an accounting storage; without
one submitit polls squeue instead, hydra_plugins.trainlab_sweeper.trainlab_submitit_launcher), and
how many GPUs a job asks for when `hydra.launcher.gpus_per_node` is left null (one where the
partition's nodes have GPUs, none on a CPU partition). No torch on this path.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache

from trainlab.errors import ConfigError

TIMEOUT_S = 20  # a slurmctld that does not answer in this long is a problem to report, not to wait on


@dataclass(frozen=True)
class Partition:
    name: str
    default: bool
    cpus: int      # per node (the smallest node of the partition)
    mem_mb: int    # per node
    gpus: int      # GPUs per node from the GRES column (0: a CPU partition)


def _run(args: list[str]) -> str | None:
    """stdout of a SLURM client command, or None where it is missing or fails."""
    if shutil.which(args[0]) is None:
        return None
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def _gpus(gres: str) -> int:
    """GPUs per node in sinfo's GRES column: `gpu:4`, `gpu:a100:8(S:0-1)`, `(null)`."""
    total = 0
    for item in gres.split(","):
        parts = item.split("(")[0].split(":")
        if parts[0] == "gpu" and parts[-1].isdigit():
            total += int(parts[-1])
    return total


@lru_cache(maxsize=1)
def partitions() -> tuple[Partition, ...] | None:
    """The cluster's partitions (sinfo), or None when sinfo is missing or slurmctld does not answer."""
    out = _run(["sinfo", "--noheader", "--format=%P|%c|%m|%G"])
    if out is None:
        return None
    found: dict[str, Partition] = {}
    for line in out.splitlines():
        name, cpus, mem, gres = (line.split("|") + ["", "", "", ""])[:4]
        default, name = name.endswith("*"), name.rstrip("*")
        number = lambda text: int(re.match(r"\d*", text).group() or 0)  # "2", "24105", "64+"
        part = Partition(name, default, number(cpus), number(mem), _gpus(gres))
        seen = found.get(name)  # several node kinds in one partition: what every node offers
        found[name] = part if seen is None else Partition(name, default, min(seen.cpus, part.cpus),
                                                          min(seen.mem_mb, part.mem_mb), min(seen.gpus, part.gpus))
    return tuple(found.values())


def find_partition(name: str | None) -> Partition | None:
    """The named partition, or the cluster's default one for None; None when sinfo cannot tell."""
    known = partitions()
    if not known:
        return None
    for part in known:
        if (name is None and part.default) or part.name == name:
            return part
    return None


@lru_cache(maxsize=1)
def keeps_accounting() -> bool:
    """Does sacct have something to read? Not with AccountingStorageType=accounting_storage/none
    (a small cluster, a laptop's): sacct then fails on every call."""
    out = _run(["scontrol", "show", "config"])
    if out is None:
        return shutil.which("sacct") is not None
    match = re.search(r"^AccountingStorageType\s*=\s*(\S+)", out, re.MULTILINE)
    return bool(match) and match.group(1) != "accounting_storage/none"


def default_gpus(partition: str | None) -> int | None:
    """gpus_per_node for a launcher that leaves it null: 1 on a partition with GPUs, else None
    (no GPU request: `--gpus-per-node=1` on a CPU partition is an sbatch error)."""
    part = find_partition(partition)
    return 1 if part is not None and part.gpus > 0 else None


def check_partition_resources(launcher) -> None:
    """One line for what sbatch would refuse on this cluster (hydra/launcher=slurm, slurm_ddp).
    Silent where sinfo cannot answer: the other checks (precheck) still ran."""
    known = partitions()
    if not known:
        return
    name = launcher.get("partition")
    part = find_partition(name)
    names = ", ".join(p.name + (" (default)" if p.default else "") for p in known)
    if part is None:
        if name is None:
            raise ConfigError("hydra.launcher.partition", None,
                              f"a partition: this cluster has no default one ({names})")
        raise ConfigError("hydra.launcher.partition", name, f"a partition of this cluster: {names}")
    tasks = int(launcher.get("tasks_per_node") or 1)
    cpus = int(launcher.get("cpus_per_task") or 1)
    if tasks * cpus > part.cpus:
        key, value = ("cpus_per_task", cpus) if tasks == 1 else ("tasks_per_node", tasks)
        raise ConfigError(f"hydra.launcher.{key}", value, f"at most {part.cpus} CPUs per node on partition "
                          f"{part.name} (tasks_per_node x cpus_per_task = {tasks} x {cpus})")
    mem_gb = launcher.get("mem_gb")
    if mem_gb is not None and mem_gb * 1024 > part.mem_mb:
        raise ConfigError("hydra.launcher.mem_gb", mem_gb, f"at most {part.mem_mb // 1024} GB per node on "
                          f"partition {part.name} ({part.mem_mb} MB)")
    gpus = launcher.get("gpus_per_node")
    if gpus and gpus > part.gpus:
        where = "has no GPUs" if part.gpus == 0 else f"has {part.gpus} GPUs per node"
        raise ConfigError("hydra.launcher.gpus_per_node", gpus, f"partition {part.name} {where}: "
                          f"{'0 or null' if part.gpus == 0 else f'at most {part.gpus}'}")
