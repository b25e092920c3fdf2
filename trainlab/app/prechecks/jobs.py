"""The checks each job of a sweep needs beyond its schemas (trainlab.config.validate): its loggers'
servers and its dataset's files. Jobs share these settings, so each distinct one is checked once
(one connect per server, one look for the files), whatever the number of jobs."""
from __future__ import annotations

import os
from dataclasses import asdict, is_dataclass
from pathlib import Path

from trainlab.app.prechecks.datasets import check_dataset_files
from trainlab.app.prechecks.loggers import CHECKS


class JobChecks:
    def __init__(self, then=None, run_dir: Path | None = None):
        self.then = then          # a further per-job check (the vectorized launcher's), or None
        self.run_dir = run_dir    # a single run's folder (it exists when resuming)
        self.seen: set = set()

    def __call__(self, spec) -> None:
        for name, schema in (spec.logger or {}).items():
            if name in CHECKS and self._first(("logger", name, _key(schema))):
                CHECKS[name](schema)
            if self.run_dir is not None and hasattr(schema, "dir"):
                _check_writable_inside(f"logger.{name}.dir", self.run_dir, str(schema.dir))
        if self._first(("dataset", _key(spec.dataset))):
            check_dataset_files(spec.dataset)
        if self.then is not None:
            self.then(spec)

    def _first(self, key) -> bool:
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


def _key(schema) -> str:
    return repr(sorted(asdict(schema).items())) if is_dataclass(schema) else repr(schema)


def _check_writable_inside(key: str, run_dir: Path, folder: str) -> None:
    """A tracker's folder in an existing run folder (resume) must be a folder this user can write."""
    from trainlab.errors import ConfigError

    if not Path(run_dir).is_dir():  # a new run: check_run_dir judged where its folder will be made
        return
    path = Path(run_dir) / folder
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise ConfigError(key, folder, f"a folder ({existing} is a file)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(key, folder, f"a folder this user can write ({existing} is not writable)")
