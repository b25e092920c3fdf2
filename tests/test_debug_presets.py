"""Debugging a configuration quickly: trainer.limit_batches, trainer=fast_dev_run, trainer.profile."""
import json
import subprocess
import sys

import torch

from tests.conftest import run_tiny


def _train(tmp_path, cli_env, *args):
    return subprocess.run([sys.executable, "-m", "trainlab", "train", *args], cwd=tmp_path,
                          env=cli_env | {"OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)


def test_limit_batches_caps_steps_and_evaluation_splits(tmp_path):
    summary = run_tiny(tmp_path / "r", ["trainer.epochs=2", "trainer.batch_size=8", "trainer.eval_batch_size=16",
                                        "trainer.limit_batches.train=3", "trainer.limit_batches.val=2",
                                        "trainer.limit_batches.test=1"])
    assert summary["status"] == "completed" and summary["steps"] == 6
    assert torch.load(tmp_path / "r" / "checkpoints" / "last.pt", weights_only=True)["counters"]["step"] == 6
    full = run_tiny(tmp_path / "full", ["trainer.epochs=1", "trainer.batch_size=8", "trainer.eval_batch_size=16"])
    assert full["steps"] > 3


def test_a_limit_changes_no_result_it_does_not_cut(tmp_path):
    """A limit above the split's size is the run without it, bit for bit."""
    args = ["trainer.epochs=2", "dataset.subset=64", "trainer.batch_size=16"]
    run_tiny(tmp_path / "a", args)
    run_tiny(tmp_path / "b", [*args, "trainer.limit_batches.train=1000", "trainer.limit_batches.val=1000"])
    a, b = (torch.load(tmp_path / d / "checkpoints" / "last.pt", weights_only=True)["model"] for d in "ab")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_fast_dev_run_keeps_nothing_of_a_single_run_and_says_so(tmp_path, cli_env):
    done = _train(tmp_path, cli_env, "trainer=fast_dev_run", "hydra.run.dir=probe")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "removed (trainer.keep_folder=false)" in done.stdout + done.stderr
    assert not (tmp_path / "probe").exists()
    kept = _train(tmp_path, cli_env, "trainer=fast_dev_run", "trainer.keep_folder=true", "hydra.run.dir=kept")
    assert kept.returncode == 0
    summary = json.loads((tmp_path / "kept" / "summary.json").read_text())
    assert summary["steps"] == 1 and summary["status"] == "completed"
    assert not (tmp_path / "kept" / "checkpoints" / "last.pt").exists()  # save_checkpoints=false


def test_profile_writes_a_trace_and_the_top_operators(tmp_path, cli_env):
    done = _train(tmp_path, cli_env, "trainer.profile=true", "trainer.epochs=2", "trainer.progress=off",
                  "dataset.subset=200", "hydra.run.dir=run")
    assert done.returncode == 0, done.stderr[-2000:]
    traces = list((tmp_path / "run" / "profile").glob("*.pt.trace.json"))
    assert len(traces) == 1 and json.loads(traces[0].read_text())["traceEvents"]
    log = (tmp_path / "run" / "train.log").read_text()
    assert "profile of epoch 1" in log and "Self CPU" in log and "aten::" in log


def test_a_bad_limit_is_one_line_before_any_folder(tmp_path, cli_env):
    done = _train(tmp_path, cli_env, "trainer.limit_batches.val=0")
    assert done.returncode == 2
    assert done.stderr.strip() == ("error: trainer.limit_batches.val=0 is not valid: a batch count >= 1, or null (all)")
    assert not (tmp_path / "outputs").exists()


def test_limit_batches_val_and_test_keep_the_first_batches_of_those_splits():
    from tests.conftest import compose_cfg
    from trainlab.config import validate
    from trainlab.engine.assemble import assemble

    spec = validate(compose_cfg(["trainer.eval_batch_size=16", "trainer.limit_batches.val=2",
                                 "trainer.limit_batches.test=1"]))
    c = assemble(spec, torch.device("cpu"))
    whole = assemble(validate(compose_cfg(["trainer.eval_batch_size=16"])), torch.device("cpu"))
    assert len(c.splits.val) == 32 and len(c.splits.test) == 16
    assert torch.equal(c.splits.val.y, whole.splits.val.y[:32]) and len(c.splits.train) == len(whole.splits.train)
