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
        ep.load()
    modules = [m.strip() for m in os.environ.get("TRAINLAB_PLUGINS", "").split(",") if m.strip()]
    if modules and os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ConfigError("TRAINLAB_PLUGINS", module, f"an importable module ({err})") from None
