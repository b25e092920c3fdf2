"""A sweep's progress: jobs done of the total, failed and diverged so far, elapsed time and ETA.

On a terminal a rich row ("sweep") above the running job's own bar (the job's bar joins the same
rich display, trainlab.engine.console); otherwise a plain line when jobs have finished (at most one
every TRAINLAB_SWEEP_PROGRESS_EVERY seconds, 10 by default) and one at least every six times that.
It counts the summary.json files the jobs write in the sweep folder, read by a polling thread,
so it sees jobs of every launcher alike: in this process, in joblib workers, in submitit jobs.
`TRAINLAB_SWEEP_PROGRESS=off|rich|plain` forces a mode.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path

POLL_S = 0.5


def clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class SweepProgress:
    def __init__(self, sweep_dir: Path, total: int, mode: str | None = None, every_s: float | None = None,
                 stream=None, open_bar=None, close_bar=None):
        # open_bar() -> a started rich Progress shared with the jobs' bars, close_bar() ends it
        # (trainlab.engine.console.sweep_progress passes them: the sweep room does not import the engine)
        self.open_bar, self.close_bar = open_bar, close_bar
        self.sweep_dir, self.total = Path(sweep_dir), max(int(total), 0)
        mode = mode or os.environ.get("TRAINLAB_SWEEP_PROGRESS", "auto")
        self.mode = ("rich" if sys.stdout.isatty() else "plain") if mode == "auto" else mode
        self.every_s = float(os.environ.get("TRAINLAB_SWEEP_PROGRESS_EVERY", 10) if every_s is None else every_s)
        self.stream = stream or sys.stdout
        self.seen: dict[Path, tuple[float, str]] = {}  # summary.json -> (mtime, status)
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.bar = self.task = None
        self.last_line, self.last_done = 0.0, -1

    # -- counting ---------------------------------------------------------------------------------
    def counts(self) -> Counter:
        """Statuses of the jobs that ended since the sweep started (a resumed sweep's kept jobs are
        not counted again: the total is what this sweep runs)."""
        try:
            folders = [p for p in self.sweep_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
        except OSError:
            folders = []
        for folder in folders:
            path = folder / "summary.json"
            try:
                mtime = path.stat().st_mtime
            except OSError:
                continue
            if mtime < self.started_wall or self.seen.get(path, (None,))[0] == mtime:
                continue
            try:
                status = json.loads(path.read_text()).get("status", "missing")
            except (OSError, ValueError):  # being replaced right now: read it at the next poll
                continue
            self.seen[path] = (mtime, status)
        return Counter(status for _, status in self.seen.values())

    def text(self, counts: Counter) -> tuple[int, str, str]:
        done = sum(counts.values())
        elapsed = time.monotonic() - self.started
        eta = clock(elapsed / done * max(self.total - done, 0)) if done else "-:--:--"
        return done, f"failed {counts['failed'] + counts['interrupted']} · diverged {counts['diverged']}", eta

    # -- display ----------------------------------------------------------------------------------
    def update(self, final: bool = False) -> None:
        counts = self.counts()
        done, problems, eta = self.text(counts)
        total = max(self.total, done)
        if self.bar is not None:
            self.bar.update(self.task, completed=done, total=total, info=problems, eta=f"ETA {eta}")
            return
        now = time.monotonic()
        changed = done != self.last_done and now - self.last_line >= self.every_s
        if final or changed or now - self.last_line >= 6 * max(self.every_s, 1):
            elapsed = clock(now - self.started)
            print(f"sweep: {done}/{total} jobs done, {problems}, elapsed {elapsed}, ETA {eta}",
                  file=self.stream, flush=True)
            self.last_line, self.last_done = now, done

    def _poll(self) -> None:
        while not self.stop.wait(POLL_S):
            try:
                self.update()
            except Exception:  # a display problem must never stop the sweep
                pass

    def __enter__(self):
        self.started, self.started_wall = time.monotonic(), time.time() - 1  # mtimes have coarse clocks
        self.last_line = self.started
        if self.mode == "off":
            return self
        if self.mode == "rich" and self.open_bar is None:
            self.mode = "plain"
        if self.mode == "rich":
            self.bar = self.open_bar()
            self.task = self.bar.add_task("sweep", total=self.total, completed=0, info="failed 0 · diverged 0",
                                          eta="ETA -:--:--")
        self.thread = threading.Thread(target=self._poll, name="sweep-progress", daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.mode == "off":
            return
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=5)
        self.update(final=True)
        if self.bar is not None:
            self.close_bar()
