"""The user's own options: modules that register schemas and builders (see docs/how-to/own-model.md)."""
import importlib
import os
import sys
from importlib.metadata import entry_points

from trainlab.errors import ConfigError


def load_plugins() -> None:
    """Import the `trainlab.plugins` entry points of installed packages and the
    modules named in TRAINLAB_PLUGINS (comma-separated). As with `python -m`, the current folder
    is searched first, so a plugin module next to the user's configs needs no PYTHONPATH."""
    for ep in entry_points(group="trainlab.plugins"):
        try:
            ep.load()
        except Exception as err:  # the package's own bug: named in one line, not a traceback on every command
            raise ConfigError("trainlab.plugins entry point", ep.value, f"a module that imports ({_why(err)})") from None
    modules = [m.strip() for m in os.environ.get("TRAINLAB_PLUGINS", "").split(",") if m.strip()]
    if modules and os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ConfigError("TRAINLAB_PLUGINS", module, f"an importable module ({err})") from None
        except Exception as err:  # a SyntaxError, or anything its import raised (TRAINLAB_VERBOSE=1: the traceback)
            if os.environ.get("TRAINLAB_VERBOSE") == "1" or os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            raise ConfigError("TRAINLAB_PLUGINS", module, f"a module that imports ({_why(err)})") from None


def _why(err: Exception) -> str:
    """The error in a few words: its type, message and, for a SyntaxError, where."""
    if isinstance(err, SyntaxError):
        return f"SyntaxError: {err.msg} at {err.filename}:{err.lineno}"
    text = " ".join(str(err).split())  # one line, whatever the message held
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
