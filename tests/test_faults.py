"""Crashes, signals, divergence, corrupt and hostile files, disk failures."""
import os
import pickle
import subprocess
import sys
import textwrap

import pytest
import torch

from conftest import run_tiny
from test_resume import assert_same_tensors, final_state, metrics_without_time

# dropout, shuffling, augmentation and EMA all on: every RNG and state the resume must restore
ARGS = ["trainer.epochs=3", "regularizer=dropout", "regularizer.dropout.p=0.3", "augment=[flip,noise]",
        "trainer.ema.decay=0.9", "optimizer=momentum", "dataset.subset=160", "trainer.batch_size=16",
        "trainer.progress=off"]
STEPS_PER_EPOCH = 10  # subset=160 training examples / 16


def run_script(run_dir, body: str, args=ARGS):
    """Run a tiny training in a subprocess with a fault injected by `body` (monkeypatching the engine)."""
    script = textwrap.dedent(f"""
        import os, signal, sys
        import torch
        torch.set_num_threads(1)  # as in the test process: the same reduction order, bit for bit
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from conftest import run_tiny
        import trainlab.engine.loop as loop_mod
        import trainlab.engine.checkpoint as ckpt_mod
        steps = [0]
        original_step = loop_mod.Loop._step
        def counting_step(self, x, target):
            out = original_step(self, x, target)
            steps[0] += 1
            after_step(steps[0])
            return out
        loop_mod.Loop._step = counting_step
        def after_step(n):
            pass
    """) + textwrap.dedent(body) + textwrap.dedent(f"""
        run_tiny({str(run_dir)!r}, {list(args)!r})
    """)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)


def resume_and_compare(tmp_path, killed_dir):
    run_tiny(tmp_path / "whole", ARGS)
    resumed = run_tiny(killed_dir, [*ARGS, "resume=true"])
    assert resumed["status"] == "completed"
    a, b = final_state(tmp_path / "whole"), final_state(killed_dir)
    for key in ("model", "optimizer", "ema", "schedule", "data"):
        assert_same_tensors(a[key], b[key])
    rows = metrics_without_time(killed_dir)
    assert rows == metrics_without_time(tmp_path / "whole")
    assert len({r["step"] for r in rows}) == len(rows)  # no duplicate rows


def test_sigkill_at_an_epoch_boundary_then_resume_is_bit_identical(tmp_path):
    res = run_script(tmp_path / "killed", """
        original_save = ckpt_mod.save_atomic
        def save_then_die(obj, path):
            original_save(obj, path)
            if path.name == "last.pt":
                os.kill(os.getpid(), signal.SIGKILL)
        ckpt_mod.save_atomic = save_then_die
    """)
    assert res.returncode == -9
    resume_and_compare(tmp_path, tmp_path / "killed")


def test_sigkill_mid_epoch_then_resume_is_bit_identical(tmp_path):
    res = run_script(tmp_path / "killed", f"""
        def after_step(n):
            if n == {STEPS_PER_EPOCH + 4}:
                os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert res.returncode == -9
    resume_and_compare(tmp_path, tmp_path / "killed")


def test_sigkill_during_checkpoint_write_leaves_previous_checkpoint(tmp_path):
    res = run_script(tmp_path / "killed", """
        import torch
        original_save = torch.save
        writes = [0]
        def dying_save(obj, fh, *a, **k):
            writes[0] += ".last.pt.tmp" in getattr(fh, "name", "")
            if writes[0] == 2 and ".last.pt.tmp" in fh.name:  # epoch 2's last.pt, mid-write
                writes[0] += 1
                fh.write(b"partial")
                fh.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            return original_save(obj, fh, *a, **k)
        torch.save = dying_save
    """)
    assert res.returncode == -9
    ckpts = tmp_path / "killed" / "checkpoints"
    assert list(ckpts.glob(".*.tmp-*"))  # the interrupted write's temp file ...
    state = torch.load(ckpts / "last.pt", weights_only=True)  # ... and the previous checkpoint still loads
    assert state["counters"]["epoch"] == 1
    resume_and_compare(tmp_path, tmp_path / "killed")
    assert not list(ckpts.glob(".*.tmp-*"))  # cleaned up when the run resumed


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_signal_finishes_the_step_saves_and_resumes(tmp_path, sig):
    res = run_script(tmp_path / "stopped", f"""
        def after_step(n):
            if n == {STEPS_PER_EPOCH + 3}:
                os.kill(os.getpid(), signal.{sig})
    """)
    assert res.returncode == 0, res.stderr[-2000:]
    import json

    summary = json.loads((tmp_path / "stopped" / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["signal"] == sig
    state = torch.load(tmp_path / "stopped" / "checkpoints" / "last.pt", weights_only=True)
    assert state["counters"]["step"] == STEPS_PER_EPOCH + 3 and state["counters"]["batch_in_epoch"] == 3
    resume_and_compare(tmp_path, tmp_path / "stopped")


def test_divergence_stops_with_the_step_and_skip_mode_counts(tmp_path):
    s = run_tiny(tmp_path / "div", ["optimizer=sgd", "optimizer.lr=1e6", "trainer.epochs=3", "init=normal",
                                     "init.std=1.0"])
    assert s["status"] == "diverged"
    assert s["diverged_at_step"] is not None and 1 <= s["diverged_at_step"] <= s["steps"]
    assert any(f["kind"] == "diverged" for f in s["diagnosis"])
    skip = run_tiny(tmp_path / "skip", ["optimizer=sgd", "optimizer.lr=1e6", "trainer.epochs=2", "init=normal",
                                         "init.std=1.0", "trainer.nonfinite=skip"])
    assert skip["status"] == "completed" and skip["skipped_steps"] > 0


def test_divergence_between_evaluations_is_caught_at_the_epoch_end(tmp_path):
    s = run_tiny(tmp_path, ["optimizer=sgd", "optimizer.lr=1e6", "trainer.epochs=6", "trainer.eval_every=5",
                            "init=normal", "init.std=1.0"])
    assert s["status"] == "diverged" and s["epochs_run"] < 5


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    from trainlab.errors import ConfigError

    run_tiny(tmp_path, ["trainer.epochs=1", "trainer.stop_after=1", "trainer.epochs=2"])
    last = tmp_path / "checkpoints" / "last.pt"
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 2])
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match="last.pt"):
        run_tiny(tmp_path, ["trainer.epochs=2", "resume=true"])
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.name != "summary.json"}
    assert all(before[p] == after[p] for p in after if p in before)


class Evil:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_hostile_checkpoint_is_refused_and_its_code_never_runs(tmp_path, monkeypatch):
    from trainlab.engine import checkpoint
    from trainlab.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    torch.save({"model": Evil()}, path)  # torch.save pickles the object: loading it unsafely would run os.system
    with pytest.raises(ConfigError, match="evil.pt"):
        checkpoint.load(path)
    assert not (tmp_path / "PWNED").exists()
    with open(tmp_path / "plain.pkl", "wb") as fh:
        pickle.dump(Evil(), fh)
    with pytest.raises(ConfigError):
        checkpoint.load(tmp_path / "plain.pkl")
    assert not (tmp_path / "PWNED").exists()


def test_resume_with_a_conflicting_config_names_the_keys(tmp_path):
    from trainlab.errors import ConfigError

    run_tiny(tmp_path, ["trainer.epochs=2", "trainer.stop_after=1"])
    with pytest.raises(ConfigError, match=r"arch \(") as err:
        run_tiny(tmp_path, ["trainer.epochs=2", "resume=true", "arch=linear"])
    assert "resume" in str(err.value)
    with pytest.raises(ConfigError, match="dataset.name"):
        run_tiny(tmp_path, ["trainer.epochs=2", "resume=true", "dataset=spirals"])
    # harmless changes are allowed
    assert run_tiny(tmp_path, ["trainer.epochs=3", "resume=true", "trainer.progress=plain"])["status"] == "completed"


def test_write_failure_fails_cleanly_with_previous_checkpoint_intact(tmp_path, monkeypatch):
    from trainlab.engine import checkpoint

    run_tiny(tmp_path, ["trainer.epochs=3", "trainer.stop_after=1"])
    good = (tmp_path / "checkpoints" / "last.pt").read_bytes()
    original = torch.save

    def full_disk(obj, fh, *a, **k):
        fh.write(b"xx")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match="no space left on device while writing .*checkpoints/(best|last).pt"):
        run_tiny(tmp_path, ["trainer.epochs=3", "resume=true"])
    monkeypatch.setattr(torch, "save", original)
    assert (tmp_path / "checkpoints" / "last.pt").read_bytes() == good
    assert not list((tmp_path / "checkpoints").glob(".*.tmp-*"))
    import json

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "failed" and "no space left on device while writing" in summary["error"]


def test_existing_run_folder_is_never_overwritten(tmp_path):
    from trainlab.errors import ConfigError

    run_tiny(tmp_path, ["trainer.epochs=1"])
    before = (tmp_path / "checkpoints" / "best.pt").read_bytes()
    with pytest.raises(ConfigError, match="hydra.run.dir"):
        run_tiny(tmp_path, ["trainer.epochs=1"])
    assert (tmp_path / "checkpoints" / "best.pt").read_bytes() == before


def test_cli_exit_code_after_sigterm(tmp_path, cli_env):
    """SIGTERM sent to `trainlab train`: the run saves, is marked interrupted, and the process exits 143."""
    import json
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "trainlab", "train", "trainer.epochs=400", "trainer.progress=plain",
                             "dataset.subset=200", "trainer.batch_size=8"], cwd=tmp_path, env=cli_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    runs = tmp_path / "outputs" / "runs"
    while time.time() < deadline and not (runs.exists() and list(runs.glob("*/metrics.csv"))):
        time.sleep(0.2)  # wait until training is under way (the first evaluation is written)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    run = next(runs.iterdir())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["signal"] == "SIGTERM"
    assert (run / "checkpoints" / "last.pt").is_file()
