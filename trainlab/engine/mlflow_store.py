"""logger=mlflow on an SQLite file: one process at a time creates the store.

MLflow creates a new database's schema when a client first opens it (its tables, then a chain
of alembic migrations: seconds), and checks that it is empty first without any lock. Two
sweeps started together on a new outputs/mlflow.db both find it empty and both migrate it: the
loser fails with `table ... already exists` or alembic's "expected to match one row", and so
does every job of its sweep. Opening the store (and getting or creating the experiment, which
races the same way for two jobs of one sweep) under an exclusive flock on a lock file beside
the database makes the second process wait and then find the schema complete. Once the
database exists the lock is held only for those few queries.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("trainlab")

# a filesystem without flock (some NFS mounts): go on unlocked, as before the lock existed
NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS)


def lock_file(db: Path) -> Path:
    return db.with_name(f".{db.name}.lock")


@contextlib.contextmanager
def store_lock(db: Path | None) -> Iterator[None]:
    """Hold the exclusive lock of an SQLite store `db` (None: another kind of store, no lock).
    It blocks until the process holding it is done; the kernel frees it if that one dies."""
    if db is None:
        yield
        return
    fd = os.open(lock_file(db), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as err:
            if err.errno not in NO_LOCKS:
                raise
            log.warning(f"cannot lock {db}: two runs creating it at once could collide")
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock
