"""The lock that keeps a second process from writing a run (or sweep) folder: flock(2) on
`.trainlab.lock`, holding the writer's PID, released when the process ends (even killed).
A claim that fails (refused, disk full) leaves the folder as it found it."""
import fcntl
import logging
import os
from pathlib import Path

from trainlab.errors import ConfigError

log = logging.getLogger("trainlab")
LOCK_NAME = ".trainlab.lock"


class FolderLock:
    """An exclusive advisory lock (flock) on a folder, held while this process writes it.

    The kernel drops it when the process ends, however it ends (kill -9 included), so a
    crashed run never leaves a stale lock. Taken again by the same process (the CLI claims a
    run folder, then Hydra runs its job in the same process) it is shared, not refused.
    On a filesystem without locks (some NFS mounts) flock fails with ENOLCK: the run goes on
    unlocked, with a warning, and two writers are then not detected.
    """

    _held: dict[str, "FolderLock"] = {}

    def __init__(self, folder: Path, fd: int | None):
        self.folder, self.fd, self.users = folder, fd, 1
        self.previous: bytes | None = None  # the lock file's content before this process took it
        self.made_lock = False              # this process created the lock file in an existing folder
        self.created = False                # this process created the folder itself

    @classmethod
    def acquire(cls, folder: Path, key: str, record: list[str] | None = None) -> "FolderLock":
        """Lock `folder`, making it when absent: with `record` (a single run's overrides) it appears
        whole, lock and record inside (trainlab.app.run_record). A full disk or any other OSError is
        one ConfigError, with the folders and the lock file this call made removed again."""
        folder = Path(folder).absolute()
        held = cls._held.get(str(folder))
        if held is not None:
            held.users += 1
            return held
        created, fd, made_lock = new_folders(folder), None, False
        try:
            if record is not None and created:
                from trainlab.app.run_record import create_claimed

                fd = create_claimed(folder, LOCK_NAME, record)
            if fd is None:
                folder.mkdir(parents=True, exist_ok=True)
                made_lock = not (folder / LOCK_NAME).exists()
                fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            _undo_creation(created, folder / LOCK_NAME if made_lock else None)
            raise ConfigError(key, str(folder), f"a folder this process can write ({err.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise ConfigError(key, str(folder), f"a folder no other process is writing: process {holder} "
                                                "is writing it now (wait for it to end, or stop it)") from None
        except OSError as err:
            os.close(fd)
            log.warning(f"cannot lock {folder} ({err.strerror}): a second process writing it would not be refused")
            fd = None
        previous = None
        if fd is not None:
            try:
                previous = os.pread(fd, 64, 0)
                mine = f"{os.getpid()}\n".encode()
                os.pwrite(fd, mine, 0)  # written over the old PID, then cut: a full disk fails before any change
                os.ftruncate(fd, len(mine))
            except OSError as err:  # ENOSPC: a new lock file's first block
                os.close(fd)
                _undo_creation(created, folder / LOCK_NAME if made_lock else None)
                raise ConfigError(key, str(folder), f"a folder with room to write in ({err.strerror})") from None
        lock = cls._held[str(folder)] = cls(folder, fd)
        lock.created = bool(created)
        lock.previous = None if made_lock else previous
        lock.made_lock = made_lock
        return lock

    def release(self, refused: bool = False) -> None:
        """`refused`: this process wrote nothing there, so the lock file gets its earlier holder's
        PID back (a refused `resume` leaves the folder byte for byte as it was)."""
        self.users -= 1
        if self.users > 0:
            return
        self._held.pop(str(self.folder), None)
        if self.fd is not None and refused and self.previous is not None:
            try:
                os.pwrite(self.fd, self.previous, 0)
                os.ftruncate(self.fd, len(self.previous))
            except OSError:
                pass
        if self.fd is not None and refused and self.made_lock:
            # unlinked while still locked: a process that opens it now finds the folder as it was
            (self.folder / LOCK_NAME).unlink(missing_ok=True)
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the flock
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def new_folders(folder: Path) -> list[Path]:
    """`folder` and those of its parents that do not exist yet, deepest first ([] when it exists)."""
    out, path = [], Path(folder).absolute()
    while not path.exists():
        out.append(path)
        path = path.parent
    return out


def _undo_creation(created: list[Path], lock_file: Path | None) -> None:
    """What a failed claim made: the lock file it created, then the folders (only while empty)."""
    if lock_file is not None:
        lock_file.unlink(missing_ok=True)
    for path in created:
        try:
            path.rmdir()
        except FileNotFoundError:  # never made (the claim failed before it)
            continue
        except OSError:
            break
