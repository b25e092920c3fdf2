"""Where a result came from: the user's `tags=[...]` and the git commit of the code.

Both go into summary.json and to every tracker (trainlab.engine.trackers), so a run can be
found by its tags (`trainlab table --where tags=baseline`) and traced to the commit that
trained it. No torch here: the config check imports this.
"""
from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

from trainlab.errors import ConfigError

MAX_TAG = 64  # W&B's limit on a tag's length; MLflow and TensorBoard take longer ones


def check_tags(value) -> list[str]:
    """`tags=` as a list of strings: `tags=[baseline,v2]`, or one tag as `tags=baseline`."""
    if value is None:
        return []
    items = [value] if isinstance(value, (str, int, float)) and not isinstance(value, bool) else value
    try:
        tags = [str(t) for t in items]
    except TypeError:
        raise ConfigError("tags", value, "a list of short labels, e.g. tags=[baseline,v2]") from None
    for tag, item in zip(tags, items):
        if isinstance(item, (dict, list)) or not tag.strip() or len(tag) > MAX_TAG or "," in tag:
            raise ConfigError("tags", value, f"a list of labels of 1 to {MAX_TAG} characters without commas, "
                                             "e.g. tags=[baseline,v2]")
    return tags


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5,
                             env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})  # a read must not take git's lock
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@functools.lru_cache(maxsize=None)
def _git_state_of(folder: str) -> dict | None:
    commit = _git(["rev-parse", "HEAD"], Path(folder))
    if not commit:
        return None
    changes = _git(["status", "--porcelain", "--untracked-files=no"], Path(folder))
    root = _git(["rev-parse", "--show-toplevel"], Path(folder))
    return {"commit": commit, "dirty": bool(changes), "repo": root}


def git_state() -> dict | None:
    """{commit, dirty (tracked files changed), repo} of the git checkout holding the working
    folder, else of the one holding trainlab's code (an editable install); None outside git.
    Read once per process: a sweep's jobs share it."""
    for folder in (Path.cwd(), Path(__file__).resolve().parent):
        state = _git_state_of(str(folder))
        if state:
            return state
    return None
