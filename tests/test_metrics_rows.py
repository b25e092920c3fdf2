"""metrics.csv answers questions: a step-0 row, eval-mode training numbers, the lr the epoch trained at."""
import csv
import math

import torch

from conftest import compose_cfg, run_tiny
from trainlab.data.splits import Split
from trainlab.engine.loop import train_sample


def _rows(run_dir):
    with open(run_dir / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_step0_row_train_eval_columns_and_trained_lr(tmp_path):
    summary = run_tiny(tmp_path / "r", ["trainer.epochs=2", "regularizer=dropout", "schedule=step",
                                        "schedule.step_size=1", "trainer.diagnostics=light"])
    rows = _rows(tmp_path / "r")
    assert [int(r["step"]) for r in rows] == [0, 3, 6]
    first = rows[0]
    assert first["epoch"] == "0" and first["train_loss"] == "" and first["train_acc"] == ""
    assert 0 <= float(first["train_eval_acc"]) <= 1 and float(first["val_loss"]) > 0
    # the evaluation before training is no candidate for the best checkpoint
    assert summary["best"]["epoch"] >= 1
    # schedule=step step_size=1 (gamma 0.1): epoch 1 trained at 1e-3, epoch 2 at 1e-4
    assert [math.isclose(float(r["lr"]), lr) for r, lr in zip(rows, [1e-3, 1e-3, 1e-4])] == [True] * 3
    for r in rows[1:]:  # both train numbers at every evaluation
        assert r["train_loss"] != "" and r["train_eval_loss"] != ""
    # diagnostics columns start after the step-0 row: the file is widened, not cut
    assert any(k.startswith("diag/") for k in rows[0]) and rows[1][next(k for k in rows[1] if k.startswith("diag/"))]
    assert summary["final"]["train_eval_acc"] == float(rows[-1]["train_eval_acc"])
    assert summary["diagnosis"] == [] or all(f["kind"] != "diverged" for f in summary["diagnosis"])


def test_train_eval_is_eval_mode(tmp_path):
    """With heavy dropout the running train-mode accuracy is biased low; the eval-mode sample is not."""
    run_tiny(tmp_path / "d", ["trainer.epochs=6", "regularizer=dropout", "regularizer.dropout.p=0.7",
                              "dataset.subset=300"])
    last = _rows(tmp_path / "d")[-1]
    assert float(last["train_eval_acc"]) > float(last["train_acc"])


def test_train_sample_is_fixed_and_no_larger_than_val():
    train = Split(torch.arange(100).float().unsqueeze(1), torch.arange(100) % 10)
    a, b = train_sample(train, 30), train_sample(train, 30)
    assert len(a) == 30 and torch.equal(a.x, b.x) and len(torch.unique(a.x)) == 30
    assert train_sample(train, 500) is train
    before = torch.get_rng_state()
    train_sample(train, 7)
    assert torch.equal(before, torch.get_rng_state())  # draws from no random stream


def test_the_train_eval_sample_is_capped_below_a_large_validation_split(tmp_path, monkeypatch):
    import trainlab.engine.loop as loop

    sizes, real = [], loop.train_sample
    monkeypatch.setattr(loop, "TRAIN_EVAL_SIZE", 5)
    monkeypatch.setattr(loop, "train_sample", lambda train, size: sizes.append(size) or real(train, size))
    run_tiny(tmp_path / "cap")  # its validation split holds more than 5 examples
    assert sizes == [5]


def test_run_folder_has_step_losses_and_named_layers_for_the_figures(tmp_path):
    import json

    from trainlab.engine.metrics import read_step_losses

    summary = run_tiny(tmp_path / "f", ["trainer.epochs=2", "trainer.diagnostics_every=1"], figures=True)
    losses = read_step_losses(tmp_path / "f" / "step_losses.csv")
    assert len(losses) == summary["steps"] and all(math.isfinite(v) for v in losses)
    labels = json.loads((tmp_path / "f" / "diagnostics_layers.json").read_text())
    assert labels["1"].startswith("1 Linear ") and "×" in labels["1"]  # module path, type, weight shape
    assert (tmp_path / "f" / "curves.png").stat().st_size > 10_000


def test_curves_figure_draws_hand_built_rows_with_a_constant_lr(tmp_path):
    from trainlab.engine.figures import plot_curves

    nan = math.nan
    rows = [{"step": 0, "epoch": 0, "lr": 0.01, "train_loss": nan, "train_penalty": nan, "train_acc": nan,
             "val_loss": 2.3, "val_acc": 0.1, "train_eval_loss": 2.3, "train_eval_acc": 0.1}]
    rows += [{"step": 10 * e, "epoch": e, "lr": 0.01, "train_loss": 1 / e, "train_penalty": 0.0, "train_acc": 0.9,
              "val_loss": 1.2 / e, "val_acc": 0.8, "train_eval_loss": 0.9 / e, "train_eval_acc": 0.95} for e in (1, 2, 3)]
    plot_curves(rows, tmp_path / "c.png", step_losses=[2.0 - i / 20 for i in range(30)],
                summary={"best": {"epoch": 2}, "test": {"acc": 0.81}})
    assert (tmp_path / "c.png").stat().st_size > 10_000
