"""`trainlab eval`: a checkpoint scored on a split by the engine's own evaluation: the test numbers
equal the run's summary.json, other splits and another dataset work, a damaged checkpoint or bad
input is one line and exit code 2."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_tiny
from trainlab.app.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("eval") / "run"
    summary = run_tiny(run_dir, ["trainer.epochs=2"])
    assert summary["status"] == "completed"
    return run_dir, summary


def test_eval_of_a_run_reproduces_its_test_metrics_and_writes_them(trained, capsys):
    run_dir, summary = trained
    assert main(["eval", str(run_dir)]) == 0
    out = capsys.readouterr().out
    written = json.loads((run_dir / "eval" / "best_digits_test.json").read_text())
    assert written["top1_acc"] == pytest.approx(summary["test"]["acc"], abs=1e-9)
    assert written["loss"] == pytest.approx(summary["test"]["loss"], rel=1e-6)
    assert f"top-1 {summary['test']['acc']:.4f}" in out
    assert written["top1_acc"] <= written["top5_acc"] <= 1 and written["examples"] == 360
    confusion = written["confusion"]
    assert len(confusion) == 10 and sum(map(sum, confusion)) == 360
    assert sum(confusion[i][i] for i in range(10)) == round(written["top1_acc"] * 360)
    for k, row in enumerate(confusion):
        assert written["per_class_acc"][k] == pytest.approx(row[k] / sum(row))
    assert (run_dir / "eval" / "best_digits_test_confusion.png").stat().st_size > 5000


def test_eval_on_the_val_split_and_on_another_dataset(trained, capsys):
    run_dir, _ = trained
    checkpoint = run_dir / "checkpoints" / "last.pt"
    assert main(["eval", str(checkpoint), "split=val"]) == 0
    val = json.loads((run_dir / "eval" / "last_digits_val.json").read_text())
    assert val["split"] == "val" and val["examples"] > 0
    # another dataset of the same shape and classes: random images, so about chance
    assert main(["eval", str(checkpoint), "dataset=synthetic", "dataset.shape=[1,8,8]", "dataset.test_size=200"]) == 0
    other = json.loads((run_dir / "eval" / "last_synthetic_test.json").read_text())
    assert other["examples"] == 200 and sum(map(sum, other["confusion"])) == 200
    capsys.readouterr()
    assert main(["eval", str(checkpoint), "dataset=spirals"]) == 2  # 2-D points, 3 classes: not this model's
    assert "dataset='spirals' is not valid: a dataset with the input shape and classes" in capsys.readouterr().err


def test_eval_refuses_a_damaged_checkpoint_and_bad_input_in_one_line(trained, tmp_path):
    run_dir, _ = trained
    damaged = tmp_path / "damaged.pt"
    data = bytearray((run_dir / "checkpoints" / "best.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    for args in ([str(damaged)], [str(run_dir), "split=holdout"], [str(tmp_path / "none")], [str(run_dir), "lr=1"]):
        res = subprocess.run([sys.executable, "-m", "trainlab", "eval", *args], cwd=ROOT, capture_output=True,
                             text=True, timeout=120)
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        assert len(res.stderr.strip().splitlines()) == 1 and res.stderr.startswith("error: ")
