"""Kill campaign: a 4-replicate vectorized group (dropout, EMA, augmentation) SIGKILLed at chosen and at
random moments, then `trainlab resume-sweep`; every replicate must end bit-identical to the group that
was never interrupted (weights, optimizer, EMA, RNG streams, data order, metrics.csv), with no metrics
row twice. Marked slow; .ci/run runs it after the default suite.

The chosen moments are made exact from inside the process: a driver patches trainlab and sends
SIGKILL to its own process right after the N-th checkpoint file lands (between two replicates'
writes, or between a group's epochs) or right after the N-th metrics row is appended (before the
first checkpoint exists)."""
import csv
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow

REPLICATES = 4
SWEEP = ["-m", f"seed=range({REPLICATES})", "hydra/launcher=vectorized", "regularizer=dropout",
         "trainer.ema.decay=0.9", "augment=noise", "trainer.epochs=4", "trainer.progress=off",
         "trainer.threads=1", "dataset.subset=400"]

DRIVER = """
import os, signal, sys
mode, count = sys.argv[1], int(sys.argv[2])
seen = [0]

def after(original):
    def wrapped(*args, **kwargs):
        out = original(*args, **kwargs)
        seen[0] += 1
        if seen[0] == count:
            os.kill(os.getpid(), signal.SIGKILL)
        return out
    return wrapped

if mode == "write":
    from trainlab.engine import checkpoint
    checkpoint._write_atomic = after(checkpoint._write_atomic)
elif mode == "row":
    from trainlab.engine.metrics import MetricsFile
    MetricsFile.append = after(MetricsFile.append)
sys.argv = ["trainlab", "train", *sys.argv[3:]]
from trainlab.app.cli import entry
entry()
"""


def _train(args: list[str], env: dict, driver: tuple[str, int] | None = None, kill_after: float | None = None):
    command = [sys.executable, "-c", DRIVER, *map(str, driver), *args] if driver else \
        [sys.executable, "-m", "trainlab", "train", *args]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, err = proc.communicate(timeout=kill_after)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return proc.returncode, err


def _resume(sweep: Path, env: dict):
    proc = subprocess.run([sys.executable, "-m", "trainlab", "resume-sweep", str(sweep)], env=env,
                          capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stderr


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return [{k: v for k, v in row.items() if k != "time_s"} for row in csv.DictReader(fh)]


def _state(folder: Path) -> dict:
    state = torch.load(folder / "checkpoints" / "last.pt", weights_only=True)
    state["counters"].pop("elapsed_s")
    return {k: state[k] for k in ("model", "optimizer", "schedule", "ema", "rng", "data", "pending",
                                  "step_losses", "counters")}


def _same(a, b, where: str) -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    elif torch.is_tensor(a):
        assert torch.equal(a, b), where
    else:
        assert a == b, where


def _jobs(sweep: Path) -> list[Path]:
    return sorted(p for p in sweep.iterdir() if (p / ".hydra").is_dir())


def _check_against(sweep: Path, reference: Path, what: str) -> list[str]:
    """What differs from the reference group (nothing: [])."""
    ours, theirs = _jobs(sweep), _jobs(reference)
    if [p.name for p in ours] != [p.name for p in theirs]:
        return [f"{what}: other job folders"]
    problems = []
    for r, (mine, ref) in enumerate(zip(ours, theirs)):
        rows = _rows(mine / "metrics.csv")
        steps = [row["step"] for row in rows]
        try:
            assert len(steps) == len(set(steps)), f"a metrics row twice: steps {steps}"
            assert rows == _rows(ref / "metrics.csv"), "metrics.csv differs"
            _same(_state(mine), _state(ref), "last.pt")
        except AssertionError as err:
            problems.append(f"{what}: replicate {r}: {str(err).splitlines()[0]}")
    return problems


def test_a_killed_group_resumes_bit_identical_to_the_uninterrupted_one(tmp_path, cli_env):
    env = cli_env | {"OMP_NUM_THREADS": "1"}
    reference = tmp_path / "reference"
    started = time.monotonic()
    code, err = _train([*SWEEP, f"hydra.sweep.dir={reference}"], env)
    assert code == 0, err[-2000:]
    full_s = time.monotonic() - started
    # 4 replicates x (4 epochs' last.pt + best.pt when better): the writes of one epoch end are 4-8 files
    moments = [("write", 1), ("write", 2), ("write", 3), ("write", 6), ("write", 8), ("write", 11),
               ("row", 2), ("row", 4), ("row", 6), ("row", 9)]
    rng = random.Random(0)  # moments within the run (a loaded machine runs the reference slower than these)
    moments += [("time", round(rng.uniform(0.3, 0.7) * full_s, 2)) for _ in range(3)]
    killed, problems = 0, []
    for i, (mode, at) in enumerate(moments):
        sweep = tmp_path / f"kill{i}"
        args = [*SWEEP, f"hydra.sweep.dir={sweep}"]
        if mode == "time":
            code, err = _train(args, env, kill_after=at)
        else:
            code, err = _train(args, env, driver=(mode, at))
        what = f"kill {i} ({mode} {at})"
        if code == 0:  # the moment never came (a timed kill after the end): nothing to resume
            problems += _check_against(sweep, reference, what)
            continue
        assert code == -9, f"{what}: {err[-2000:]}"
        killed += 1
        code, err = _resume(sweep, env)
        if code != 0:
            problems.append(f"{what}: resume-sweep exit {code}: {err.strip().splitlines()[-1:]}")
            continue
        problems += _check_against(sweep, reference, what)
    print(f"kill campaign: {killed} kills landed of {len(moments)}; problems: {len(problems)}")
    assert not problems, "\n".join(problems)
    assert killed >= 10, f"only {killed} of {len(moments)} kills landed before the end"
