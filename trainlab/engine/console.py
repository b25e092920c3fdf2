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


class Progress:
    """An epoch/step progress bar on a terminal; nothing otherwise (eval lines are logged)."""

    def __init__(self, mode: str, total_steps: int, done_steps: int):
        use_rich = mode == "rich" or (mode == "auto" and is_terminal())
        self._bar = None
        if use_rich:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress
            from rich.progress import TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._bar = RichProgress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                                     console=console(), transient=True)
            self._task = self._bar.add_task("train", total=total_steps, completed=done_steps, info="")

    def __enter__(self):
        if self._bar:
            self._bar.start()
        return self

    def advance(self, steps: int = 1, info: str | None = None):
        if self._bar:
            self._bar.update(self._task, advance=steps, **({"info": info} if info is not None else {}))

    def __exit__(self, *exc):
        if self._bar:
            self._bar.stop()
