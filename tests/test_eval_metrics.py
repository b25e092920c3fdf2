"""trainer.metrics: top-5, per-class accuracy and the confusion matrix, counted on the device and
read back once per evaluation; equal to a plain count; in metrics.csv, summary.json, confusion.png."""
import csv

import pytest
import torch

from conftest import compose_cfg, run_tiny
from test_hot_loop import build_loop, count_reads
from trainlab.config import validate
from trainlab.engine.eval_metrics import EvalCounts, resolve
from trainlab.errors import ConfigError


def test_counts_equal_a_plain_count_over_batches():
    gen = torch.Generator().manual_seed(0)
    scores, labels = torch.randn(70, 12, generator=gen), torch.randint(0, 12, (70,), generator=gen)
    counts = EvalCounts(frozenset({"top5", "per_class", "confusion"}), 12, torch.device("cpu"))
    for i in range(0, 70, 32):  # batches of 32, 32, 6
        counts.add(scores[i:i + 32], labels[i:i + 32], torch.tensor(0.5))
    out = counts.read(70)
    top5 = sum(int(labels[i]) in scores[i].topk(5).indices.tolist() for i in range(70)) / 70
    matrix = [[0] * 12 for _ in range(12)]
    for t, p in zip(labels.tolist(), scores.argmax(1).tolist()):
        matrix[t][p] += 1
    assert out["loss"] == pytest.approx(0.5) and out["top5_acc"] == pytest.approx(top5)
    assert out["confusion"] == matrix and out["acc"] == pytest.approx(sum(matrix[i][i] for i in range(12)) / 70)
    assert out["per_class"] == pytest.approx([matrix[i][i] / sum(matrix[i]) if sum(matrix[i]) else float("nan")
                                              for i in range(12)], nan_ok=True)


def test_auto_is_top5_above_ten_classes_and_unknown_names_are_refused():
    assert resolve(["auto"], 10) == frozenset() and resolve(["auto"], 11) == {"top5"}
    assert resolve(["per_class"], 100) == {"per_class"}  # an explicit list replaces auto
    with pytest.raises(ConfigError) as err:
        validate(compose_cfg(["trainer.metrics=[top1]"]))
    assert err.value.key == "trainer.metrics"


def test_evaluation_with_every_metric_reads_back_once(monkeypatch):
    loop = build_loop(["trainer.metrics=[top5,per_class,confusion]"])
    calls = count_reads(monkeypatch)
    out = loop.evaluate(loop.train_split)
    monkeypatch.undo()
    assert calls == ["tolist"] and len(out["confusion"]) == 10


def test_run_writes_top5_per_class_columns_and_confusion_figure(tmp_path):
    summary = run_tiny(tmp_path / "run", ["trainer.metrics=[top5,per_class,confusion]"])
    with open(tmp_path / "run" / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["step"] for r in rows[:1]] == ["0"]  # the step-0 evaluation, then the epoch's
    row = rows[-1]
    assert float(row["val_top5_acc"]) >= float(row["val_acc"])
    assert [f"val_acc_c{k}" in row for k in range(10)] == [True] * 10
    assert summary["test"]["top5_acc"] >= summary["test"]["acc"] and len(summary["test"]["per_class"]) == 10
    assert (tmp_path / "run" / "confusion.png").stat().st_size > 0


def test_default_run_of_many_classes_reports_top5(tmp_path):
    summary = run_tiny(tmp_path / "run", ["dataset=synthetic", "dataset.classes=20", "dataset.shape=[8]",
                                          "dataset.train_size=200", "dataset.test_size=40", "arch=mlp"])
    with open(tmp_path / "run" / "metrics.csv", newline="") as fh:
        assert "val_top5_acc" in next(csv.reader(fh))
    assert "top5_acc" in summary["test"] and not (tmp_path / "run" / "confusion.png").exists()
