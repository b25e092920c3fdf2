"""A run folder's own record of its overrides, and the claim that makes a new folder appear whole.

Hydra writes .hydra/config.yaml, hydra.yaml and overrides.yaml one after the other, each with a
plain open("w"): a process killed in between (SIGKILL, an OOM kill) left a folder with an empty
hydra.yaml and no overrides.yaml, which `trainlab resume` could not read. So a single run's folder
appears in one rename, already holding its lock and `.trainlab.overrides.yaml` (the overrides the
run was started with, written before anything else), and every later claim of it rewrites that
record through a temp file. A kill at any moment of start-up leaves either no folder or one that
`trainlab resume` restarts. No torch here.
"""
import errno
import fcntl
import os
import shutil
import tempfile
import time
from pathlib import Path

import yaml

RECORD_NAME = ".trainlab.overrides.yaml"
CLAIMING = ".claiming-"   # marks a folder being made: `.<name>.claiming-<random>`, renamed into place
STALE_CLAIM_S = 60.0      # a claiming folder this old, unlocked, was left by a killed process


def task_overrides(args: list[str]) -> list[str]:
    """The overrides of a `trainlab train` argument list as Hydra records them: no flags nor their values
    (`--cfg job`, `-cd DIR`), no hydra keys."""
    return [a for a in args if not a.startswith("-") and ("=" in a or a.startswith("~"))
            and not a.split("=", 1)[0].lstrip("+~").startswith("hydra")]


def recorded_overrides(run_dir: Path) -> list[str] | None:
    """The overrides a run folder was last started with: its own record, else Hydra's
    .hydra/overrides.yaml (folders made before the record existed); None when neither is readable."""
    for path in (run_dir / RECORD_NAME, run_dir / ".hydra" / "overrides.yaml"):
        try:
            found = yaml.safe_load(path.read_text())
        except (OSError, ValueError, yaml.YAMLError):  # missing, unreadable, not text, not YAML
            continue
        if isinstance(found, list) and all(isinstance(o, str) for o in found):
            return found
    return None


def write_record(run_dir: Path, overrides: list[str]) -> None:
    """The record, replaced whole (temp file + rename): never seen half written."""
    _write_atomic(run_dir / RECORD_NAME, yaml.safe_dump(list(overrides)))


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def create_claimed(folder: Path, lock_name: str, overrides: list[str]) -> int | None:
    """Make `folder` (absent now) appear whole: a hidden sibling gets the lock file (locked, holding
    this PID) and the record, then is renamed to `folder`. The locked descriptor of the lock file;
    None when another process made `folder` meanwhile (the caller then opens that one).
    OSError (a full disk) or a stop signal leaves nothing behind."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_claims(folder.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name[:100]}{CLAIMING}", dir=folder.parent))
    fd = None
    try:
        fd = os.open(tmp / lock_name, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # nobody else knows this folder: never blocks
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        write_record(tmp, overrides)
        os.rename(tmp, folder)  # fails when `folder` appeared meanwhile and is not empty
        return fd
    except BaseException as err:  # a full disk, or a stop signal while claiming: no hidden folder stays
        if fd is not None:
            os.close(fd)
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, OSError) and err.errno in (errno.ENOTEMPTY, errno.EEXIST) and folder.exists():
            return None  # ENOTEMPTY / EEXIST: another process made it first
        raise


def _remove_stale_claims(parent: Path) -> None:
    """Claiming folders a killed process left (their lock is free and they are old): removed."""
    try:
        candidates = [p for p in parent.iterdir() if p.name.startswith(".") and CLAIMING in p.name]
    except OSError:
        return
    for path in candidates:
        try:
            if time.time() - path.stat().st_mtime < STALE_CLAIM_S:
                continue
            fd = os.open(next(path.glob(".*.lock"), path), os.O_RDONLY)
        except (OSError, StopIteration):
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass
        finally:
            os.close(fd)


# Room kept below the OS path limit for what a run writes inside its folder
# (checkpoints/.snapshot_e001.pt.tmp-<pid>, .hydra/overrides.yaml, a sweep job's own folder name).
INSIDE_BYTES = 128


def existing_ancestor(path: Path) -> Path:
    """The nearest folder above `path` (or itself) that exists; a name too long to look up counts as absent."""
    probe = path
    while True:
        try:
            if probe.exists() or probe == probe.parent:
                return probe
        except OSError:  # ENAMETOOLONG from the lookup itself
            pass
        probe = probe.parent


def check_path_fits(key: str, value: str, path: Path, existing: Path) -> None:
    """ConfigError when the folder's names or its whole path exceed what the filesystem allows
    (NAME_MAX, PATH_MAX, less INSIDE_BYTES for the files a run writes there): said before any folder."""
    from trainlab.errors import ConfigError

    try:
        name_max, path_max = os.pathconf(existing, "PC_NAME_MAX"), os.pathconf(existing, "PC_PATH_MAX")
    except (OSError, ValueError):
        name_max, path_max = 255, 4096
    shown = value if len(value) <= 80 else f"{value[:40]}…{value[-20:]} ({len(value)} characters)"
    for part in path.relative_to(existing).parts:
        if len(os.fsencode(part)) > name_max:
            raise ConfigError(key, shown, f"a path whose folder names fit the filesystem's limit of {name_max} bytes "
                                          f"(one is {len(os.fsencode(part))})")
    if len(os.fsencode(str(path))) + INSIDE_BYTES > path_max:
        raise ConfigError(key, shown, f"a path of at most {path_max - INSIDE_BYTES} bytes (the OS limit {path_max}, "
                                      f"less room for the run's own files); this one is {len(os.fsencode(str(path)))}")
