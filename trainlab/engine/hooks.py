"""What a caller attaches to a run without the training core importing it.

Trackers, the Optuna trial reporter, live diagnostics, the curve diagnosis and user callbacks are
hooks: objects the command shell (trainlab.app.hooks) builds and hands to each Run. The core
calls them at fixed points of a run's life, the same points for a single run and for each
replicate of a stacked group:

    on_start(run)                 set up, before the step-0 evaluation (a resumed run: after restore)
    before_training(run)          a verdict ("pruned") that ends the run before its first step, or None
    on_eval(run, row, initial)    every metrics.csv row as it is written; a verdict ("pruned") or None
    on_epoch_end(run)             after each completed epoch (its evaluation and decision included)
    summarize(run, rows)          extra entries for summary.json (the curve diagnosis)
    on_end(run, status, summary, files)   the run has ended; summary.json and the figures exist

A hook that fails in on_end is a warning (the result is already on disk); anywhere else its
exception is the run's.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from trainlab.engine.run import Run

log = logging.getLogger("trainlab")

# run folder -> the figure files it drew (or None when they are drawn aside): the caller's choice
FigureDrawer = Callable[[Path], "list[Path] | None"]


class Hook:
    """Every method is optional: a hook overrides the ones it needs."""

    def on_start(self, run: Run) -> None:
        pass

    def before_training(self, run: Run) -> str | None:
        return None

    def on_eval(self, run: Run, row: dict, initial: bool) -> str | None:
        return None

    def on_epoch_end(self, run: Run) -> None:
        pass

    def summarize(self, run: Run, rows: list[dict]) -> dict:
        return {}

    def on_end(self, run: Run, status: str, summary: dict | None, files: list[Path]) -> None:
        pass


class Hooks:
    """A run's hooks, called in order; the first verdict wins (every hook still sees the row)."""

    def __init__(self, hooks: list[Hook] | None = None):
        self.hooks = list(hooks or [])

    def on_start(self, run: Run) -> None:
        for hook in self.hooks:
            hook.on_start(run)

    def before_training(self, run: Run) -> str | None:
        verdicts = [hook.before_training(run) for hook in self.hooks]
        return next((v for v in verdicts if v), None)

    def on_eval(self, run: Run, row: dict, initial: bool) -> str | None:
        verdicts = [hook.on_eval(run, row, initial) for hook in self.hooks]
        return next((v for v in verdicts if v), None)

    def on_epoch_end(self, run: Run) -> None:
        for hook in self.hooks:
            hook.on_epoch_end(run)

    def summarize(self, run: Run, rows: list[dict]) -> dict:
        extra: dict = {}
        for hook in self.hooks:
            extra |= hook.summarize(run, rows)
        return extra

    def on_end(self, run: Run, status: str, summary: dict | None, files: list[Path]) -> None:
        for hook in self.hooks:
            try:
                hook.on_end(run, status, summary, files)
            except Exception as err:
                log.warning(f"{type(hook).__name__}: could not record the run's end ({type(err).__name__}: {err})")
