"""One writer per run or sweep folder (a lock another process sees), and signals while a run starts up:
the folder left behind is one `trainlab resume` starts from scratch, or none at all."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from trainlab.app.cli import main

HOLD = """
import sys, time
from pathlib import Path
from trainlab.app.folder_lock import FolderLock
lock = FolderLock.acquire(Path(sys.argv[1]), "hydra.run.dir")
print("locked", flush=True)
time.sleep(120)
"""


@pytest.fixture
def holder(tmp_path, cli_env):
    """A second process holding the lock on a folder, as a training process does while it writes it."""
    procs = []

    def start(folder):
        proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], env=cli_env, stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "locked"
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def test_a_second_writer_is_refused_naming_the_holder_and_the_lock_dies_with_it(tmp_path, monkeypatch, capsys, holder):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "outputs" / "runs" / "shared"
    proc = holder(run)
    args = ["train", "trainer.epochs=1", "dataset.subset=100", "trainer.progress=off", f"hydra.run.dir={run}"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [f"error: hydra.run.dir='{run}' is not valid: a folder no other process is writing: "
                                f"process {proc.pid} is writing it now (wait for it to end, or stop it)"]
    assert sorted(p.name for p in run.iterdir()) == [".trainlab.lock"]  # nothing written by the refused one
    sweep = tmp_path / "outputs" / "sweeps" / "shared"
    holder(sweep)
    assert main(["train", "-m", "seed=0,1", *args[2:4], "trainer.progress=off", f"hydra.sweep.dir={sweep}"]) == 2
    assert f"hydra.sweep.dir='{sweep}'" in capsys.readouterr().err
    proc.send_signal(signal.SIGKILL)  # the kernel drops the lock with the process, however it ends
    proc.wait()
    assert main(args) == 0


def test_resume_while_the_run_is_still_being_written_is_refused(tmp_path, monkeypatch, capsys, holder):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "outputs" / "runs" / "r"
    assert main(["train", "trainer.epochs=2", "trainer.stop_after=1", "dataset.subset=100", "trainer.progress=off",
                 f"hydra.run.dir={run}"]) == 0
    capsys.readouterr()
    before = sorted(p.name for p in run.rglob("*"))
    proc = holder(run)
    assert main(["resume", str(run)]) == 2
    assert f"process {proc.pid} is writing it now" in capsys.readouterr().err
    assert sorted(p.name for p in run.rglob("*")) == before


def _stop_during(monkeypatch, target, attribute, signum):
    """Send `signum` to this process the moment `target.attribute` is called (start-up work)."""
    original = getattr(target, attribute)

    def interrupted(*args, **kwargs):
        os.kill(os.getpid(), signum)
        time.sleep(0.5)  # the handler runs at the next bytecode; never reached when it raises
        return original(*args, **kwargs)

    monkeypatch.setattr(target, attribute, interrupted)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_loading_data_leaves_a_folder_resume_restarts(tmp_path, monkeypatch, capsys, signum):
    import trainlab.engine.assemble as assemble

    monkeypatch.chdir(tmp_path)
    run = tmp_path / "outputs" / "runs" / "early"
    args = ["train", "trainer.epochs=1", "dataset.subset=100", "trainer.progress=off", f"hydra.run.dir={run}"]
    with monkeypatch.context() as m:
        _stop_during(m, assemble, "load_splits", signum)
        # Python's own Ctrl-C handler, as in a fresh process: in the full suite SIGINT was once found
        # ignored here (the run never saw it), left so by something earlier in the same process
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            assert main(args) == 128 + signum
        finally:
            signal.signal(signal.SIGINT, previous)
    name = signal.Signals(signum).name
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"interrupted ({name})"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["signal"] == name
    assert not (run / "checkpoints" / "last.pt").exists()
    assert main(["train", *args[1:]]) == 2  # a new run is not written over it ...
    assert main(["resume", str(run)]) == 0  # ... resume starts it again from scratch
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"


def test_a_signal_before_the_job_starts_leaves_no_folder(tmp_path, monkeypatch, capsys):
    import trainlab.app.job as job

    monkeypatch.chdir(tmp_path)
    _stop_during(monkeypatch, job, "choices_block", signal.SIGTERM)  # imported into job from app.choices
    assert main(["train", "trainer.epochs=1", "trainer.progress=off"]) == 143
    assert not (tmp_path / "outputs").exists()


# A real `trainlab train` process that sends itself SIGTERM at the moment module TARGET starts being
# imported (before trainlab.app.cli.main runs, the default action would simply end it; every target here
# is first imported after). Deterministic: the signal lands inside that import, wherever the machine is.
SIGNAL_DURING_IMPORT = """
import os, signal, sys
TARGET = sys.argv[1]

class SignalOnImport:
    def find_spec(self, name, path=None, target=None):
        if name == TARGET:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGTERM)
        return None

sys.meta_path.insert(0, SignalOnImport())
sys.argv = ["trainlab", "train", "trainer.epochs=1", "trainer.progress=off"]
from trainlab.app.cli import entry
entry()
"""


def _assert_stopped_cleanly(proc, err: str, root) -> None:
    """Exit 143 without a traceback, leaving no run folder, or one `trainlab resume` accepts."""
    from trainlab.app.run_folder import stopped_before_checkpoint

    assert proc.returncode == 143, err[-3000:]
    assert "Traceback" not in err and "has no attribute" not in err, err[-3000:]
    for run in (root / "outputs" / "runs").glob("*"):
        summary = json.loads((run / "summary.json").read_text())
        assert summary["status"] == "interrupted"
        assert (run / "checkpoints" / "last.pt").exists() or stopped_before_checkpoint(run)


# numpy.matrixlib: where the flaky CI failure's signal landed (numpy then lacked `matrix`, the run trained
# on and failed in the curve diagnosis); the others: torch, Hydra, trainlab's core, the run's own imports
@pytest.mark.parametrize("target", ["numpy.matrixlib", "numpy.linalg", "torch.optim", "hydra.core.plugins",
                                    "omegaconf", "trainlab.engine.run", "trainlab.engine.loop"])
def test_sigterm_during_an_import_at_start_up_stops_cleanly(tmp_path, cli_env, target):
    proc = subprocess.Popen([sys.executable, "-c", SIGNAL_DURING_IMPORT, target], cwd=tmp_path, env=cli_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate(timeout=120)
    _assert_stopped_cleanly(proc, err, tmp_path)


@pytest.mark.parametrize("after", ["process", "train.log"])
def test_sigterm_at_a_moment_of_start_up_stops_cleanly(tmp_path, cli_env, after):
    """SIGTERM 0.3 s after the process starts, or just after its run folder's train.log appears."""
    proc = subprocess.Popen([sys.executable, "-m", "trainlab", "train", "trainer.epochs=1", "trainer.progress=off"],
                            cwd=tmp_path, env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if after == "process":
        time.sleep(0.3)
    else:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob("outputs/runs/*/train.log")) and time.monotonic() < deadline:
            time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:  # a fast machine finished before the signal
        return
    if proc.returncode == -signal.SIGTERM:  # a loaded machine: before trainlab's handler, the default action
        assert after == "process" and not (tmp_path / "outputs").exists()
        return
    _assert_stopped_cleanly(proc, err, tmp_path)
