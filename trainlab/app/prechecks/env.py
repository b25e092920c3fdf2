"""The environment variables trainlab reads, checked when a command starts: a misspelt value was
silently ignored before (TRAINLAB_FIGURES=sometimes drew in the background, a missing config folder
in TRAINLAB_CONFIG_PATH added no options)."""
from __future__ import annotations

import os
from pathlib import Path

from trainlab.errors import ConfigError

# trainlab.engine.figures reads these: unset draws in a background process, `wait` returns once the
# figures exist, `inline` draws in the command's own process
FIGURES_MODES = ("wait", "inline")


def check_environment() -> None:
    figures = os.environ.get("TRAINLAB_FIGURES")
    if figures is not None and figures not in ("", *FIGURES_MODES):
        raise ConfigError("TRAINLAB_FIGURES", figures, "unset (figures drawn in the background), "
                          + " or ".join(FIGURES_MODES) + " (see the README, Run folders)")
    for folder in filter(None, os.environ.get("TRAINLAB_CONFIG_PATH", "").split(os.pathsep)):
        path = Path(folder).expanduser()
        if not path.is_dir():
            what = "a file" if path.exists() else "missing"
            raise ConfigError("TRAINLAB_CONFIG_PATH", folder, f"existing config folders separated by "
                              f"'{os.pathsep}', each holding <group>/<option>.yaml files ({path.absolute()} is {what})")
