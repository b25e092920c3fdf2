"""Shared fixtures: compose configs through Hydra's compose API and run tiny jobs in-process."""
import os
import shutil
from pathlib import Path

import pytest
from trainlab.app.compose import compose_job

SHARED_DATA = Path(os.environ.get("TRAINLAB_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))

# Commands draw their figures in the calling process before they return (by default a background drawer
# finishes them after the command has returned): tests look at the figures, must not leave drawers behind
# in deleted folders, and a drawer process per command would import matplotlib hundreds of times.
os.environ.setdefault("TRAINLAB_FIGURES", "inline")

# The smallest settings that still exercise the whole loop: a few steps per epoch, no rich bar.
TINY = ["dataset.subset=120", "trainer.epochs=1", "trainer.batch_size=32", "trainer.progress=off", "trainer.threads=1"]


@pytest.fixture(autouse=True)
def _quiet_threads():
    import torch

    torch.set_num_threads(1)  # tiny models: thread start-up costs more than it saves
    yield


def compose_cfg(overrides=()):
    return compose_job(list(overrides))


def run_tiny(run_dir: Path, overrides=(), tiny=True, figures=False) -> dict:
    """Train in-process with the tiny settings (overridable) and return summary.json's content.
    Figures (about 0.6 s a run, most of a tiny run's time) only when a test looks at them."""
    from trainlab.app.job import run_job
    from trainlab.engine.figures import draw_run_figures

    base = [o for o in TINY if o.split("=")[0] not in {x.split("=")[0] for x in overrides}] if tiny else []
    cfg = compose_cfg([*base, *overrides])
    return run_job(cfg, run_dir, list(overrides), draw_figures=draw_run_figures if figures else _no_figures)


def _no_figures(run_dir: Path) -> None:
    pass


@pytest.fixture
def data_root(tmp_path_factory):
    """A writable copy of the shared MNIST / Fashion-MNIST archives (torchvision layout)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real MNIST archives not found at {SHARED_DATA}")
    root = tmp_path_factory.mktemp("data")
    for name in ("MNIST", "FashionMNIST"):
        if (SHARED_DATA / name).is_dir():
            shutil.copytree(SHARED_DATA / name, root / name)
    return root


@pytest.fixture
def cli_env(tmp_path):
    """Environment for CLI subprocesses: plain output, no inherited verbosity."""
    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "TRAINLAB_VERBOSE")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def train_in(root: Path, args: list[str]) -> None:
    """`trainlab train ARGS` in-process, with `root` as the working folder (relative outputs land there)."""
    from trainlab.app.cli import main

    old = os.getcwd()
    os.chdir(root)
    try:
        assert main(["train", *args]) == 0
    finally:
        os.chdir(old)
