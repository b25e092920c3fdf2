"""Ships the top-level conf/ inside the wheel as trainlab/conf (everything else is in pyproject.toml).

Why not a package-dir mapping of trainlab.conf onto conf/: it makes setuptools serve an
editable install through an import hook, and Hydra, which finds its plugins (trainlab's
sweeper and config search path) by listing the hydra_plugins folder on sys.path, then no
longer sees them. With this copy step the layout stays plain: an editable install puts the
checkout on sys.path and reads conf/ in place.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithConf(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        source = Path(__file__).resolve().parent / "conf"
        target = Path(self.build_lib) / "trainlab" / "conf"
        shutil.copytree(source, target, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "__init__.py"))


setup(cmdclass={"build_py": BuildWithConf})
