"""callbacks=[module:attribute, ...]: the user's own hooks, attached to every run without editing trainlab.

The attribute is a class (made with no arguments, once per run), any object (a module, an
instance) with some of these methods, each optional, or one function named as one of them:

    on_start(run)                 the run is set up (run.run_dir, run.spec, run.counters, run.c.model ...)
    on_eval(run, row, initial)    every metrics.csv row as it is written (initial: the step-0 row);
                                  return "pruned" to stop the run there (it ends `pruned`), else None
    on_epoch_end(run)             after each epoch, its evaluation included
    on_end(run, status, summary, files)   the run has ended: summary.json and figures exist

A module on the Python path works as it is (`callbacks=[mypkg.hooks:Notify]`); TRAINLAB_PLUGINS
modules are imported first, so a plugin can carry its callbacks too. Each entry is imported and
checked in the precheck, before any folder exists.
"""
from __future__ import annotations

import importlib
import inspect
import types

from trainlab.engine.hooks import Hook
from trainlab.errors import ConfigError

METHODS = ("on_start", "before_training", "on_eval", "on_epoch_end", "summarize", "on_end")


def resolve(entry: str, key: str = "callbacks"):
    """The object `entry` ("module:attribute") names, or a one-line ConfigError."""
    module_name, _, attribute = entry.partition(":")
    try:
        target = importlib.import_module(module_name)
    except Exception as err:  # a user's module: any error on import is bad input here
        raise ConfigError(key, entry, f"an importable module ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})")
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ConfigError(key, entry, f"a name defined in {module_name} (it has no {attribute!r})")
        target = getattr(target, part)
    if inspect.isfunction(target) and target.__name__ in METHODS:  # one function: the hook at that point
        return types.SimpleNamespace(**{target.__name__: target})
    if not any(callable(getattr(target, m, None)) for m in METHODS):
        raise ConfigError(key, entry, f"a class or object with any of {', '.join(METHODS)}, or a function so named")
    return target


class UserHook(Hook):
    """One callbacks entry as a hook: its methods called where it has them."""

    def __init__(self, target):
        self.target = target() if inspect.isclass(target) else target

    def _call(self, name: str, *args):
        method = getattr(self.target, name, None)
        return method(*args) if callable(method) else None

    def on_start(self, run) -> None:
        self._call("on_start", run)

    def before_training(self, run) -> str | None:
        return self._call("before_training", run)

    def on_eval(self, run, row: dict, initial: bool) -> str | None:
        return self._call("on_eval", run, row, initial)

    def on_epoch_end(self, run) -> None:
        self._call("on_epoch_end", run)

    def summarize(self, run, rows: list[dict]) -> dict:
        return self._call("summarize", run, rows) or {}

    def on_end(self, run, status: str, summary: dict | None, files: list) -> None:
        self._call("on_end", run, status, summary, files)


def user_hooks(entries: list[str]) -> list[UserHook]:
    return [UserHook(resolve(entry, f"callbacks[{i}]")) for i, entry in enumerate(entries)]


def check_callbacks(entries: list[str]) -> None:
    """The precheck's part: every entry imports and names a hook."""
    for i, entry in enumerate(entries):
        resolve(entry, f"callbacks[{i}]")
