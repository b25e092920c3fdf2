"""Terminal output: a rich display on a terminal, compact plain lines otherwise."""
import logging
import sys

from rich.console import Console
from rich.logging import RichHandler

_console: Console | None = None


def console() -> Console:
    global _console
    if _console is None:
        _console = Console(stderr=False)
    return _console


def is_terminal() -> bool:
    return sys.stdout.isatty()


def _not_file_only(record: logging.LogRecord) -> bool:
    return not getattr(record, "file_only", False)


def make_console_handler() -> logging.Handler:
    """Logging handler for the console (named in the Hydra job_logging config).

    Records logged with extra={"file_only": True} (tracebacks) go to train.log only."""
    if is_terminal():
        handler = RichHandler(console=console(), show_path=False, show_level=False, markup=False,
                              log_time_format="[%X]")
    else:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(_not_file_only)
    return handler


_shared = None  # a sweep's rich display (sweep_progress): each job's bar is a row of it


def _rich_progress(transient: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress
    from rich.progress import TextColumn, TimeElapsedColumn, TimeRemainingColumn

    class Remaining(TimeRemainingColumn):  # the sweep row brings its own ETA (jobs are few: rich's rate is noise)
        def render(self, task):
            return task.fields["eta"] if "eta" in task.fields else super().render(task)

    return RichProgress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), Remaining(),
                        console=console(), transient=transient)


def _open_shared():
    global _shared
    _shared = _rich_progress(transient=False)
    _shared.start()
    return _shared


def _close_shared() -> None:
    global _shared
    if _shared is not None:
        _shared.stop()
    _shared = None


def sweep_progress(sweep_dir, total: int):
    """The sweep's progress display (trainlab.sweep.progress): a rich row on a terminal that the
    jobs' bars join, plain lines otherwise."""
    from trainlab.sweep.progress import SweepProgress

    return SweepProgress(sweep_dir, total, open_bar=_open_shared, close_bar=_close_shared)


class Progress:
    """An epoch/step progress bar on a terminal; nothing otherwise (eval lines are logged)."""

    def __init__(self, mode: str, total_steps: int, done_steps: int):
        use_rich = mode == "rich" or (mode == "auto" and is_terminal())
        self._bar, self._own = None, _shared is None
        if use_rich:  # in a sweep on the terminal, a row under the sweep's (sweep_progress)
            self._bar = _shared if _shared is not None else _rich_progress(transient=True)
            self._task = self._bar.add_task("train", total=total_steps, completed=done_steps, info="")

    def __enter__(self):
        if self._bar and self._own:
            self._bar.start()
        return self

    def advance(self, steps: int = 1, info: str | None = None):
        if self._bar:
            self._bar.update(self._task, advance=steps, **({"info": info} if info is not None else {}))

    def __exit__(self, *exc):
        if self._bar and self._own:
            self._bar.stop()
        elif self._bar:
            self._bar.remove_task(self._task)
