"""Checkpoints: plain tensors and containers, written atomically, loaded with weights_only.

A checkpoint holds everything needed to resume exactly: model, optimizer,
scheduler, gradient scaler, counters, every RNG state, the data-order and
augmentation generators, the preprocessing statistics and the resolved config.
Written by several processes (DDP), it also holds each rank's own RNG states,
augmentation generator and partial epoch sums under `ranks`, indexed by rank.
"""
import logging
import os
import random
from pathlib import Path

import numpy as np
import torch

from trainlab.errors import ConfigError

log = logging.getLogger("trainlab")


def save_atomic(obj: dict, path: Path) -> None:
    """Write to a temp file in the same folder, fsync, then rename over the target:
    a crash mid-write leaves the previous checkpoint intact and no partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def remove_stale_temporaries(folder: Path) -> None:
    """Temp files left by a process killed mid-write (the rename never happened)."""
    if folder.is_dir():
        for tmp in folder.glob(".*.tmp-*"):
            tmp.unlink(missing_ok=True)


def load(path: Path) -> dict:
    """Load a checkpoint as data only; a corrupt or hostile file is a one-line error."""
    if not path.is_file():
        raise ConfigError("checkpoint", str(path), "an existing checkpoint file (was the run started with checkpoints on?)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling errors come in many types
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError("checkpoint", str(path), f"a readable trainlab checkpoint (loading failed: {first[:200]})") from None


def rng_state() -> dict:
    """Every global RNG the run draws from (dropout uses torch's)."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    random.setstate(_as_tuple(state["python"]))
    np_ = state["numpy"]
    np.random.set_state(("MT19937", np_["keys"].numpy().astype(np.uint32), np_["pos"], np_["has_gauss"], np_["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def own_rank_state(state: dict, info) -> dict | None:
    """This rank's entry of a checkpoint's `ranks`, or None when it has none (a single-process
    checkpoint: its top-level states are rank 0's). Resuming with another number of processes
    than wrote it is allowed, with a warning: ranks without an entry start fresh streams."""
    ranks = state.get("ranks") or []
    saved = max(len(ranks), 1)
    if saved != info.world and info.is_main:
        log.warning(f"checkpoint written by {saved} process(es), resumed by {info.world}: ranks without a saved RNG "
                    "state start fresh per-rank streams, so this run will not match an uninterrupted one")
    return ranks[info.rank] if info.rank < len(ranks) else None


def _as_tuple(value):
    return tuple(_as_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value
