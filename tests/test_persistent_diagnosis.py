"""Diagnosis that says what matters: a clean train/val gap is overfitting; update/weight ratio
warnings only for a persistent condition, each layer once, with a summary; none on the default run."""
import logging

import pytest

from conftest import run_tiny
from trainlab.diagnose.curves import diagnose
from trainlab.diagnose.live import LiveDiagnostics
from torch import nn


def _rows(train_eval, val, train_running=None):
    return [{"step": 10 * i, "epoch": i, "lr": 0.01, "train_loss": 0.5 / (i + 1), "val_loss": 0.5,
             "train_acc": (train_running or train_eval)[i], "val_acc": v, "train_eval_acc": t}
            for i, (t, v) in enumerate(zip(train_eval, val))]


def test_steady_clean_gap_is_overfitting_with_numbers():
    # 100% train vs 84% val from early on: a steady gap (the running numbers would not show growth)
    rows = _rows([0.9, 1.0, 1.0, 1.0, 1.0, 1.0], [0.8, 0.84, 0.84, 0.84, 0.84, 0.84])
    found = [f for f in diagnose(rows, [], 2.3, 10, 500) if f.kind == "overfitting"]
    assert len(found) == 1 and "100.0% vs val 84.0%" in found[0].message and "16.0-point gap" in found[0].message
    close = _rows([0.9, 0.95, 0.97, 0.97, 0.97, 0.97], [0.88, 0.92, 0.93, 0.93, 0.93, 0.93])
    assert not [f for f in diagnose(close, [], 2.3, 10, 500) if f.kind == "overfitting"]


def test_ratio_warnings_need_a_persistent_condition():
    diag = LiveDiagnostics(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)))
    settle = [0.15, 0.04, 0.014, 0.008]  # the default run's head (layer 5), epochs 1-4: settling, no warning
    stuck = [0.05, 0.06, 0.05, 0.05]     # steps stay large: warned once, at the third evaluation
    warned = [diag.persistent({"diag/0.update_ratio": a, "diag/1.update_ratio": b}) for a, b in zip(settle, stuck)]
    assert [len(w) for w in warned] == [0, 0, 1, 0]
    assert warned[2][0].startswith("1: update/weight ratio") and "for 3 evaluations" in warned[2][0]
    assert diag.summary() == "update/weight ratio high in 1 layer (1)"
    # an interrupted condition starts counting again
    fresh = LiveDiagnostics(nn.Sequential(nn.Linear(2, 2)))
    counts = [len(fresh.persistent({"diag/0.update_ratio": v})) for v in [0.05, 0.05, 0.001, 0.05, 0.05]]
    assert counts == [0] * 5 and fresh.summary() is None


def test_a_ratio_that_collapses_to_zero_is_a_persistent_problem_not_a_crash():
    # vanishing gradients (10-layer tanh, N(0, 0.01^2) init): the update ratio reaches exactly 0.0,
    # which once divided by zero and failed the run
    diag = LiveDiagnostics(nn.Sequential(nn.Linear(2, 2)))
    warned = [diag.persistent({"diag/0.update_ratio": v}) for v in [1e-9, 0.0, 0.0, 0.0]]
    assert [len(w) for w in warned] == [0, 0, 1, 0] and "low" in warned[2][0]


@pytest.mark.slow  # the whole default run, ~25 s on 2 shared cores; the fast test above replays its ratios
def test_default_run_logs_no_diagnostics_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        summary = run_tiny(tmp_path / "default", ["trainer.progress=off"], tiny=False)
    assert summary["status"] == "completed"
    assert not [r for r in caplog.records if "diagnostics" in r.getMessage()]
