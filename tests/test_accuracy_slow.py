"""Real-data accuracy checks (slow: `pytest -m slow`). Figures seen are recorded in the issue notes."""
import pytest

from conftest import run_tiny

pytestmark = pytest.mark.slow


def test_mnist_mlp_three_epochs(tmp_path, data_root):
    summary = run_tiny(tmp_path, ["dataset=mnist", f"dataset.root={data_root}", "dataset.download=true",
                                  "arch=mlp", "trainer.epochs=3", "trainer.batch_size=128", "trainer.progress=plain"],
                       tiny=False)
    print("mnist mlp test acc", summary["test"]["acc"])
    assert summary["test"]["acc"] >= 0.97


def test_fashion_mnist_cnn_five_epochs(tmp_path, data_root):
    summary = run_tiny(tmp_path, ["dataset=fashion_mnist", f"dataset.root={data_root}", "dataset.download=true",
                                  "arch=cnn", "arch.channels=[32,64]", "arch.global_pool=false", "arch.head_width=128",
                                  "norm=batchnorm",
                                  "trainer.epochs=5", "trainer.batch_size=128", "trainer.progress=plain"], tiny=False)
    print("fashion cnn test acc", summary["test"]["acc"])
    assert summary["test"]["acc"] >= 0.89


def test_default_digits_run_reaches_95_percent(tmp_path):
    summary = run_tiny(tmp_path, ["trainer.progress=plain"], tiny=False)
    print("digits default test acc", summary["test"]["acc"], "wall", summary["wall_time_s"])
    assert summary["test"]["acc"] >= 0.95
