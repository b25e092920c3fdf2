"""One Optuna study shared by several workers (separate SLURM jobs, each `trainlab train -m
hydra/sweeper=optuna` in a sweep folder of its own, all on the same storage and study name).

Storage: `hydra.sweeper.storage=journal:PATH` is Optuna's journal file storage, and the one to
share between jobs on a cluster. It is an append-only log on the shared filesystem, locked by
creating a symlink, which is atomic on NFS too; SQLite relies on POSIX byte-range locks, which
NFS mounts often lack or break (SQLite's own documentation warns against it), and its single
writer turns concurrent workers into "database is locked" errors under load. An RDB server URL
(postgresql://, mysql://) works as well where a cluster has one.

Exactly n_trials: each worker counts the study's trials and asks for new ones while holding one
lock (a symlink lock beside the journal or SQLite file), so two workers never both take the last
slot. Every trial asked is counted, finished or still running in whichever worker; a worker that
died leaves its trials RUNNING, and `trainlab resume-sweep` on its folder finishes them.
"""
from __future__ import annotations

from contextlib import contextmanager, nullcontext
from pathlib import Path

from trainlab.errors import ConfigError

JOURNAL = "journal:"


def normalized(url: str) -> str:
    """The storage URL with a journal file's path made absolute (every worker and job reads the same file)."""
    if not url.startswith(JOURNAL):
        return url
    path = url[len(JOURNAL):].removeprefix("//")
    if not path:
        raise ConfigError("hydra.sweeper.storage", url, "journal:PATH, a file on a filesystem every worker sees")
    return JOURNAL + str(Path(path).absolute())


def open_storage(url: str):
    """What optuna.create_study/load_study take for `url`: a JournalStorage for journal:PATH, else the URL."""
    import optuna

    url = normalized(url)
    if not url.startswith(JOURNAL):
        return optuna.storages.get_storage(url)
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(url[len(JOURNAL):]))


def _lock_target(url: str) -> str | None:
    if url.startswith(JOURNAL):
        return url[len(JOURNAL):] + ".ask"
    if url.startswith("sqlite:///"):
        return url[len("sqlite:///"):] + ".ask"
    return None  # a database server: no shared file to lock beside it


@contextmanager
def asking(url: str):
    """Held while a worker counts the study's trials and asks for new ones."""
    target = _lock_target(normalized(url))
    if target is None:
        with nullcontext():
            yield
        return
    from optuna.storages.journal import JournalFileSymlinkLock

    lock = JournalFileSymlinkLock(target)
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


def trials_asked(study) -> int:
    """Trials that use up n_trials, in every worker: finished or running (a retry of a failed trial,
    trainlab.sweep.optuna_search.record_outcome, replaces it and is not counted again)."""
    from optuna.trial import TrialState

    return sum((t.state.is_finished() or t.state == TrialState.RUNNING) and "retry_of" not in t.user_attrs
               for t in study.get_trials(deepcopy=False))


def ask_trials(study, ask, n_trials: int, at_most: int, url: str) -> list:
    """Up to `at_most` new trials, each from `ask()`, as long as the study (all workers together)
    stays within n_trials."""
    with asking(url):
        free = n_trials - trials_asked(study)
        return [ask() for _ in range(max(0, min(at_most, free)))]
