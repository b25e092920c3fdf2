"""Lets users add their own config folders (e.g. arch/mynet.yaml) via TRAINLAB_CONFIG_PATH.

Hydra discovers SearchPathPlugins in the `hydra_plugins` namespace package; this
one appends each folder listed (os.pathsep-separated) in TRAINLAB_CONFIG_PATH.
"""
import os

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class TrainlabSearchPath(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        for folder in filter(None, os.environ.get("TRAINLAB_CONFIG_PATH", "").split(os.pathsep)):
            search_path.append(provider="trainlab-user", path=f"file://{os.path.abspath(folder)}")
