"""Checkpoints: plain tensors and containers, written atomically, loaded with weights_only.

A checkpoint holds everything needed to resume exactly: model, optimizer,
scheduler, gradient scaler, counters, every RNG state, the data-order and
augmentation generators, the preprocessing statistics and the resolved config.
Written by several processes (DDP), it also holds each rank's own RNG states,
augmentation generator and partial epoch sums under `ranks`, indexed by rank.
"""
import errno
import io
import logging
import os
import pickle
import queue
import random
import re
import threading
from pathlib import Path

import numpy as np
import torch

from trainlab import integrity
from trainlab.errors import ConfigError, DiskFull, FileError

log = logging.getLogger("trainlab")


def save_atomic(obj: dict, path: Path) -> None:
    """Write to a temp file in the same folder, seal it with its sha256 (trainlab.integrity),
    fsync, then rename over the target: a crash mid-write leaves the previous checkpoint intact
    and no partial file. A full disk is one line naming the file (DiskFull)."""
    _write_atomic(path, lambda fh: _save_sealed(obj, fh))


def _save_sealed(obj: dict, fh) -> None:
    writer = integrity.DigestWriter(fh)
    try:
        torch.save(obj, writer)
    except RuntimeError:
        if writer.error is not None:  # the OSError torch's zip writer reported as "unexpected pos"
            raise writer.error from None
        raise
    writer.seal()


def _write_atomic(path: Path, fill) -> None:
    """`fill(fh)` writes the content: temp file, fsync, rename (save_atomic)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            fill(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFull(path) from None
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


class BackgroundWriter:
    """save_atomic with the disk's part done on one background thread, in submission order: a
    checkpoint is serialized in memory at once (what it holds is fixed when the call returns),
    then sealed, written, fsynced and renamed while the caller goes on.

    Why: a group of seed replicates (hydra/launcher=vectorized) writes each replicate's last.pt
    and best.pt at every epoch end, R checkpoints where one run writes one, and the write, fsync
    and rename (3-4 ms a file here, at times 30 ms on a busy disk) would otherwise stall the whole
    group's training. A failed write (a full disk) is raised by the next save_atomic or by drain();
    a process killed with writes pending leaves, as a killed save_atomic does, the previous file and
    a temp file the next start removes. Everything submitted is on disk when drain() returns."""

    def __init__(self, pending: int = 16):
        self.queue = queue.Queue(maxsize=pending)  # at most this many serialized checkpoints in memory
        self.thread = None
        self.error: BaseException | None = None

    def save_atomic(self, obj: dict, path: Path) -> None:
        self._raise()
        buffer = io.BytesIO()
        torch.save(obj, buffer)  # sealed (hashed) on the writer's thread
        self._start()
        self.queue.put((buffer.getbuffer(), Path(path)))

    def call(self, action) -> None:
        """Run `action()` on the writer's thread once everything submitted before it is written
        (a group's commit: trainlab.engine.group_commit); skipped after a failed write."""
        self._raise()
        self._start()
        self.queue.put((action, None))

    def _start(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._serve, name="trainlab-checkpoints", daemon=True)
            self.thread.start()

    def _serve(self) -> None:
        while True:
            data, path = self.queue.get()
            try:
                if self.error is None and path is None:
                    data()
                elif self.error is None:  # after a failure, later files are not written over earlier ones
                    record = integrity.seal_in_memory(data)
                    _write_atomic(path, lambda fh: (fh.write(data[:-2]), fh.write(record)))
            except BaseException as err:
                self.error = err
            finally:
                self.queue.task_done()

    def wait(self) -> None:
        """Wait until every submitted checkpoint has been written or has failed."""
        self.queue.join()

    def drain(self) -> None:
        """Wait until every submitted checkpoint is on disk; raise the first write's failure."""
        self.wait()
        self._raise()

    def _raise(self) -> None:
        if self.error is not None:
            err, self.error = self.error, None
            raise err


def remove_stale_temporaries(folder: Path) -> None:
    """Temp files left by a process killed mid-write (the rename never happened)."""
    if folder.is_dir():
        for tmp in folder.glob(".*.tmp-*"):
            tmp.unlink(missing_ok=True)


TRAINLAB_KEYS = {"model", "config", "preprocess"}


def load(path: Path, plain_ok: bool = False) -> dict:
    """A trainlab checkpoint's content, verified against its digest and loaded as data only.

    Anything else is a one-line FileError naming the file: a digest mismatch, a truncated or
    unreadable file, pickled code (never run), or a file that holds something other than a
    trainlab checkpoint. `plain_ok` also accepts a plain state dict of tensors (transfer.weights)."""
    path = Path(path)
    if not path.is_file():
        what = "a folder" if path.is_dir() else "no such file"
        raise ConfigError("checkpoint", str(path), f"an existing checkpoint file ({what}; was the run started with "
                          "checkpoints on?)")
    sealed = integrity.verify(path)
    foreign = "not a trainlab checkpoint" + (" or a state dict of tensors" if plain_ok else "")
    if not plain_ok and not _is_zip(path):
        raise FileError(path, f"{foreign} (not a file torch.save wrote)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # weights_only refused an object that is not plain data
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        what = f" ({found.group(1)})" if found else ""
        raise FileError(path, f"{foreign}: it holds pickled code{what}, which trainlab does not run") from None
    except Exception as err:  # a damaged zip or pickle comes in many types
        raise FileError(path, f"{foreign}, or a damaged one: it cannot be read ({_first_line(err)})") from None
    if _is_trainlab(state):
        if not sealed:
            log.warning(f"{path} carries no integrity digest (written before trainlab sealed its checkpoints): "
                        "loaded unverified")
        return state
    if plain_ok and isinstance(state, dict) and state and all(isinstance(v, torch.Tensor) for v in state.values()):
        return state
    raise FileError(path, f"{foreign} (it holds {_describe(state)})")


def _is_zip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"PK\x03\x04"


def _is_trainlab(state) -> bool:
    return (isinstance(state, dict) and TRAINLAB_KEYS <= set(state) and isinstance(state["model"], dict)
            and all(isinstance(v, torch.Tensor) for v in state["model"].values()) and isinstance(state["config"], dict))


def _describe(state) -> str:
    if isinstance(state, dict):
        keys = ", ".join(map(str, list(state)[:4])) + (", ..." if len(state) > 4 else "")
        return f"a dict of {keys}" if state else "an empty dict"
    return f"a {type(state).__name__}"


def _first_line(err: Exception) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip()  # no terminal colour codes in a one-line error
    return (text.splitlines()[0] if text else type(err).__name__)[:160]


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
