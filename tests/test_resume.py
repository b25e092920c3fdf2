"""Resume means resume: stopped after epoch k and resumed, a CPU run ends bit-identical."""
import csv

import pytest
import torch

from conftest import run_tiny

OVERRIDES = ["trainer.epochs=4", "regularizer=dropout", "regularizer.dropout.p=0.3", "augment=[flip,noise]",
             "optimizer=momentum", "schedule=step", "schedule.step_size=1", "schedule.gamma=0.7",
             "dataset.subset=200", "trainer.batch_size=16"]


def metrics_without_time(run_dir):
    with open(run_dir / "metrics.csv") as fh:
        # live diagnostics (diag/* columns) sample steps; samples before a mid-epoch stop are not carried over
        return [{k: v for k, v in row.items() if k != "time_s" and not k.startswith("diag/")}
                for row in csv.DictReader(fh)]


def final_state(run_dir):
    return torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)


def assert_same_tensors(a, b):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_same_tensors(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        for x, y in zip(a, b, strict=True):
            assert_same_tensors(x, y)
    else:
        assert a == b


@pytest.mark.parametrize("stop_after", [1, 3])
def test_stopped_and_resumed_run_is_bit_identical(tmp_path, stop_after):
    whole = run_tiny(tmp_path / "whole", OVERRIDES)
    part = run_tiny(tmp_path / "split", [*OVERRIDES, f"trainer.stop_after={stop_after}"])
    assert part["status"] == "interrupted" and part["epochs_run"] == stop_after
    resumed = run_tiny(tmp_path / "split", [*OVERRIDES, "resume=true"])
    assert resumed["status"] == "completed" and resumed["epochs_run"] == 4

    a, b = final_state(tmp_path / "whole"), final_state(tmp_path / "split")
    assert_same_tensors(a["model"], b["model"])
    assert_same_tensors(a["optimizer"], b["optimizer"])
    assert_same_tensors(a["schedule"], b["schedule"])
    assert_same_tensors(a["data"], b["data"])
    assert metrics_without_time(tmp_path / "whole") == metrics_without_time(tmp_path / "split")
    assert whole["test"] == resumed["test"]
    assert whole["best"] == resumed["best"]


def test_negative_control_without_rng_restore_differs(tmp_path, monkeypatch):
    """If the RNG state were not restored, dropout masks after resume would differ: the test above would see it."""
    from trainlab.engine import checkpoint

    run_tiny(tmp_path / "whole", OVERRIDES)
    run_tiny(tmp_path / "split", [*OVERRIDES, "trainer.stop_after=2"])
    monkeypatch.setattr(checkpoint, "restore_rng_state", lambda state: None)
    torch.manual_seed(12345)
    run_tiny(tmp_path / "split", [*OVERRIDES, "resume=true"])
    a, b = final_state(tmp_path / "whole"), final_state(tmp_path / "split")
    assert any(not torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_resume_without_checkpoint_is_a_config_error(tmp_path):
    from trainlab.errors import ConfigError

    with pytest.raises(ConfigError, match="checkpoints/last.pt"):
        run_tiny(tmp_path / "empty", ["resume=true"])


def test_a_sweep_job_killed_before_its_first_checkpoint_starts_over_without_its_old_rows(tmp_path, monkeypatch):
    """A job SIGKILLed after its step-0 (and epoch-1) rows but before its first last.pt left metrics.csv
    and no summary: `resume-sweep` starts it over from scratch, and its rows are not there twice
    (they were: the folder counted as holding no run, so the new rows were appended to the old)."""
    import shutil

    from trainlab.app.cli import main

    monkeypatch.chdir(tmp_path)
    args = ["-m", "seed=0,1", "trainer.epochs=2", "dataset.subset=120", "trainer.progress=off", "hydra.sweep.dir=s"]
    assert main(["train", *args]) == 0
    job = sorted(p for p in (tmp_path / "s").iterdir() if p.name.startswith("1_"))[0]
    whole = metrics_without_time(job)
    (job / "summary.json").unlink()  # what a kill before the first checkpoint leaves: rows, no summary, no last.pt
    shutil.rmtree(job / "checkpoints")
    assert main(["resume-sweep", "s"]) == 0
    rows = metrics_without_time(job)
    assert [r["step"] for r in rows] == [r["step"] for r in whole] and rows == whole
