"""Experiment presets: every one composes into a complete study, and a shrunken one runs."""
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose
from trainlab.app.compose import hydra_session
from hydra.core.override_parser.overrides_parser import OverridesParser

from trainlab.config import validate
from trainlab.sweep.search import plan_sweep

EXPERIMENTS = Path(__file__).resolve().parents[1] / "conf" / "experiment"
REAL_DATA = sorted(p.stem for p in EXPERIMENTS.glob("*.yaml"))             # the studies on MNIST/Fashion-MNIST
QUICK = sorted(f"digits/{p.stem}" for p in (EXPERIMENTS / "digits").glob("*.yaml"))  # their sub-minute twins
PRESETS = REAL_DATA + QUICK


def test_there_are_the_classic_studies_on_real_data_with_quick_twins():
    assert {"activations", "activations_cnn", "init_schemes", "batchnorm_lr", "regularizers", "optimizers",
            "lr_search", "preprocess", "augment", "schedules", "ema_ensembles"} <= set(REAL_DATA)
    assert {f"digits/{n}" for n in ("activations", "init_schemes", "batchnorm_lr", "regularizers", "optimizers",
                                     "lr_search")} <= set(QUICK)


@pytest.mark.parametrize("name", PRESETS)
def test_preset_defines_a_complete_study(name):
    path = EXPERIMENTS / f"{name}.yaml"
    text = path.read_text()
    assert text.startswith("# @package _global_\n")
    assert f"trainlab train -m experiment={name}" in text and "# Budget:" in text and "CPU" in text
    with hydra_session():
        cfg = compose("train", overrides=[f"experiment={name}", "hydra/sweeper=trainlab"], return_hydra_config=True)
        sweeper = cfg.hydra.sweeper
        params = [f"{k}={v}" for k, v in sweeper.params.items()]
        jobs = plan_sweep(OverridesParser.create().parse_overrides(params), sweeper.n_trials, sweeper.seed).jobs
        assert 10 <= len(jobs) <= 30  # a study, yet a few minutes on a CPU
        expected = {"digits"} if name.startswith("digits/") else {"mnist", "fashion_mnist"}
        assert cfg.hydra.runtime.choices.dataset in expected
        if not name.startswith("digits/"):  # real data: a subset, fetched or extracted on first use
            assert cfg.dataset.subset and cfg.dataset.download
            assert sweeper.table.metrics, "a real-data study names the columns that show its lesson"
        # the first and the last job are valid configurations (the CLI checks all before running)
        for job in (jobs[0], jobs[-1]):
            validate(compose("train", overrides=[f"experiment={name}", "hydra/sweeper=trainlab", *job]))
    seen: dict[str, set] = {}
    for job in jobs:
        for override in job:
            key, _, value = override.partition("=")
            seen.setdefault(key, set()).add(value)
    factors = {key for key, values in seen.items() if len(values) > 1}
    assert factors - {"seed"}, "a study needs at least one factor besides the seed"
    if sweeper.n_trials is None:
        assert "seed" in sweeper.params  # ablations report mean ± std over seeds


def test_the_reworked_presets_run_in_their_papers_regimes():
    """Issue 27: each claim shows only in the regime its paper measured it in (the lesson pages' tables
    of regimes tried); these are the settings that regime needs."""
    with hydra_session():
        cnn = compose("train", overrides=["experiment=activations_cnn"])
        reg = compose("train", overrides=["experiment=regularizers"], return_hydra_config=True)
        opt = compose("train", overrides=["experiment=optimizers"])
    # ReLU vs tanh: a convnet whose features must be learned by the conv layers, the same weights for both
    assert cnn.arch.name == "cnn" and cnn.arch.global_pool and cnn.init.name == "lecun"
    # dropout: a large MLP trained long, dropout on the inputs as well as the hidden units; final accuracy first
    assert reg.arch.width >= 1024 and reg.trainer.epochs >= 100
    assert "{p:0.5,input_p:0.2}" in reg.hydra.sweeper.params["regularizer.dropout"]
    assert list(reg.hydra.sweeper.table.metrics)[0] == "final.val_acc"
    # Adam vs SGD: the paper's MLP with dropout, the training loss first, Nesterov as the baseline
    assert opt.arch.width >= 1000 and opt.regularizer.dropout.p == 0.5 and opt.trainer.batch_size == 128


def test_a_shrunken_preset_runs_into_a_table(tmp_path, cli_env):
    # command-line axes replace the preset's axes of the same key
    args = ["train", "-m", "experiment=digits/init_schemes", "init=normal,xavier", "seed=0", "arch.depth=3",
            "trainer.epochs=1", "dataset.subset=100", "trainer.progress=off", "hydra.sweep.dir=study"]
    res = subprocess.run([sys.executable, "-m", "trainlab", *args], cwd=tmp_path, env=cli_env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    lines = (tmp_path / "study" / "table.md").read_text().splitlines()
    assert lines[0].startswith("| init | best val acc (%) |")
    assert [line.split(" | ")[0] for line in lines[2:4]] == ["| normal", "| xavier"]


def test_a_study_preset_without_multirun_is_refused_with_a_hint():
    from trainlab.errors import ConfigError
    from trainlab.app.precheck import prepare

    with pytest.raises(ConfigError) as err:
        prepare(["experiment=regularizers"])
    assert "trainlab train -m experiment=regularizers" in str(err.value) and "\n" not in str(err.value)
    assert prepare(["--cfg", "job", "experiment=regularizers"]).info_only  # printing its config is fine
