"""A stacked group's last.pt files written as one unit: after a kill at any moment, every replicate
of the group holds the checkpoint of the same step.

Why hand-written: each replicate's last.pt must stay an ordinary single-run checkpoint in its own
folder (resume, ensemble and eval read it alone), yet the group resumes exactly only when all of
them are from one step: the group's dropout masks come from one global generator, so a group
split by step would draw other masks. Renaming R files is not atomic, hence two phases:

    1. each replicate's new checkpoint is written (atomically) as checkpoints/last.next.pt;
    2. a journal naming the replicates' folders is written (atomically) in their common parent,
       the `last.next.pt` files are renamed over `last.pt`, and the journal is removed.

`recover(folder)`, called before a run folder is read: a journal that names the folder means the
renames were under way: they are finished (for every folder it names). Without one, a leftover
last.next.pt is from an unfinished phase 1 and is removed: last.pt is the previous common step.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

NEXT = "last.next.pt"
JOURNAL_PREFIX = ".group-commit-"


def staged(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints" / NEXT


def journal_path(run_dirs: list[Path]) -> Path:
    parent = Path(os.path.commonpath([str(Path(d).resolve()) for d in run_dirs]))
    return parent / f"{JOURNAL_PREFIX}{Path(run_dirs[0]).name[:40]}.json"


def commit(run_dirs: list[Path]) -> None:
    """Phase 2 for folders whose last.next.pt were all written (phase 1)."""
    journal = journal_path(run_dirs)
    tmp = journal.with_name(journal.name + ".tmp")
    tmp.write_text(json.dumps([str(Path(d).resolve()) for d in run_dirs]))
    _fsync(tmp)
    tmp.replace(journal)
    _fsync_dir(journal.parent)
    _finish(journal)


def _finish(journal: Path) -> None:
    for folder in json.loads(journal.read_text()):
        next_file = staged(Path(folder))
        if next_file.exists():
            next_file.replace(next_file.with_name("last.pt"))
            _fsync_dir(next_file.parent)
    journal.unlink()
    _fsync_dir(journal.parent)


def recover(run_dir: Path) -> None:
    """Bring `run_dir`'s last.pt to its group's last committed step (see the module's docstring)."""
    run_dir = Path(run_dir)
    parent = run_dir.resolve().parent
    me = str(run_dir.resolve())
    for journal in sorted(parent.glob(f"{JOURNAL_PREFIX}*.json")):
        try:
            folders = json.loads(journal.read_text())
        except (OSError, ValueError):  # a journal is written whole (temp + rename): this is not one of ours
            continue
        if me in folders:
            _finish(journal)
    staged(run_dir).unlink(missing_ok=True)
    for tmp in parent.glob(f"{JOURNAL_PREFIX}*.json.tmp"):
        tmp.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
