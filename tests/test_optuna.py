"""hydra/sweeper=optuna: a real CLI sweep on an SQLite study in the sweep folder; the pruner stops
bad trials (status `pruned` in summary.json, the study and the table); replicates stay a grid."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

ROOT = Path(__file__).resolve().parents[1]


def test_search_space_and_replicate_grid():
    pytest.importorskip("optuna")
    from trainlab.sweep.optuna_search import split_axes

    parsed = OverridesParser.create().parse_overrides(
        ["optimizer.lr=tag(log,interval(1e-4,1e-1))", "arch.width=int(interval(8,64))", "activation=relu,tanh",
         "seed=0,1,2", "trainer.epochs=2"])
    space, grid = split_axes(parsed)
    lr, width, act = space["optimizer.lr"], space["arch.width"], space["activation"]
    assert (lr.low, lr.high, lr.log) == (1e-4, 1e-1, True) and (width.low, width.high) == (8, 64)
    assert list(act.choices) == ["relu", "tanh"]
    assert grid == [[f"seed={s}", "trainer.epochs=2"] for s in (0, 1, 2)]  # each trial runs every seed


def test_optuna_sweep_learns_prunes_and_keeps_its_study(tmp_path, cli_env):
    optuna = pytest.importorskip("optuna")

    def run_sweep(*extra):
        res = subprocess.run([sys.executable, "-m", "trainlab", "train", "-m", "hydra/sweeper=optuna",
                              "hydra.sweeper.pruner_warmup=0", "optimizer.lr=tag(log,interval(1e-4,1e-1))",
                              "dataset.subset=200", "trainer.epochs=4", "trainer.progress=off", "trainer.threads=1",
                              "trainer.save_checkpoints=false", *extra],
                             cwd=tmp_path, env={**cli_env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                             timeout=300)
        assert res.returncode == 0, res.stderr[-2000:]

    run_sweep("hydra.sweeper.n_trials=8")
    (sweep,) = (tmp_path / "outputs" / "sweeps").iterdir()
    study = optuna.load_study(study_name=sweep.name, storage=f"sqlite:///{sweep}/optuna.db")
    trials = {t.number: t for t in study.trials}
    assert len(trials) == 8 and all(t.state.is_finished() for t in trials.values())
    statuses = {}
    for job in sweep.iterdir():
        if (job / "summary.json").is_file():
            statuses[int(job.name.split("_")[0])] = json.loads((job / "summary.json").read_text())["status"]
    assert sorted(statuses) == list(range(8))  # one job per trial, numbered by trial
    for number, status in statuses.items():
        assert status == {"COMPLETE": "completed", "PRUNED": "pruned"}[trials[number].state.name]
    assert "pruned" in statuses.values()  # this seed's TPE draws reach trials the median pruner stops
    best = study.best_trial
    assert best.value == pytest.approx(json.loads(next(sweep.glob(f"{best.number}_*/summary.json")).read_text())
                                       ["best"]["val_acc"])
    assert "pruned 1/1" in (sweep / "table.md").read_text() and "optimizer.lr" in (sweep / "search.yaml").read_text()

    run_sweep("hydra.sweeper.n_trials=9", f"hydra.sweep.dir={sweep}")  # the same folder: the study continues
    study = optuna.load_study(study_name=sweep.name, storage=f"sqlite:///{sweep}/optuna.db")
    assert len(study.trials) == 9 and study.trials[8].params["optimizer.lr"] not in \
        [t.params["optimizer.lr"] for t in study.trials[:8]]
    assert len(list(sweep.glob("8_*/summary.json"))) == 1


def test_optuna_sweeper_without_optuna_is_one_line_error(monkeypatch, tmp_path):
    import importlib.util

    from trainlab.errors import ConfigError
    from trainlab.precheck import prepare

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "optuna" else real(name, *a))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        prepare(["-m", "hydra/sweeper=optuna", "optimizer.lr=interval(0.001,0.1)"])
    assert "trainlab[search]" in str(err.value) and "\n" not in str(err.value)
