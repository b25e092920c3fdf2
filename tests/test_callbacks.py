"""callbacks=[module:attribute]: the user's hooks, as docs/how-to/callbacks.md documents them (its
example is read from the page and run here), and the refusals before any folder."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "how-to" / "callbacks.md"


def _example() -> str:
    return re.search(r"```python\n(.*?)```", PAGE.read_text(), re.S).group(1)


def _train(tmp_path, cli_env, *args):
    env = cli_env | {"PYTHONPATH": str(tmp_path), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "trainlab", "train", "trainer.progress=off", *args], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)


def test_the_documented_example_runs_and_stops_a_run_that_learns_nothing(tmp_path, cli_env):
    (tmp_path / "myhooks.py").write_text(_example())
    done = _train(tmp_path, cli_env, "callbacks=[myhooks:ChanceStop]", "trainer.epochs=3", "hydra.run.dir=ok")
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((tmp_path / "ok" / "summary.json").read_text())["status"] == "completed"
    assert (tmp_path / "ok" / "note.txt").read_text().startswith("completed: best val acc")
    stuck = _train(tmp_path, cli_env, "callbacks=[myhooks:ChanceStop]", "optimizer.lr=1e-9", "trainer.epochs=3",
                   "hydra.run.dir=stuck")
    assert stuck.returncode == 0, stuck.stderr[-2000:]
    summary = json.loads((tmp_path / "stuck" / "summary.json").read_text())
    assert summary["status"] == "pruned" and summary["epochs_run"] == 2
    assert (tmp_path / "stuck" / "note.txt").read_text().startswith("pruned")


def test_a_module_of_plain_functions_is_a_hook_too_and_sees_every_row(tmp_path):
    from tests.conftest import run_tiny

    (tmp_path / "counting.py").write_text("rows = []\ndef on_eval(run, row, initial):\n    rows.append(row['step'])\n")
    sys.path.insert(0, str(tmp_path))
    try:
        summary = run_tiny(tmp_path / "run", ["callbacks=[counting:on_eval]", "trainer.epochs=2"])
        import counting
    finally:
        sys.path.remove(str(tmp_path))
    assert summary["status"] == "completed"
    steps = [int(float(line.split(",")[0])) for line in (tmp_path / "run" / "metrics.csv").read_text().splitlines()[1:]]
    assert counting.rows == steps


@pytest.mark.parametrize("value,message", [
    ("[nosuchmodule:Hook]", "callbacks[0]='nosuchmodule:Hook' is not valid: an importable module"),
    ("[myhooks:Missing]", "callbacks[0]='myhooks:Missing' is not valid: a name defined in myhooks"),
    ("[myhooks]", "callbacks[0]='myhooks' is not valid: 'module:attribute'"),
    ("[myhooks:NOT_A_HOOK]", "callbacks[0]='myhooks:NOT_A_HOOK' is not valid: a class or object with any of"),
    ("hello", "callbacks='hello' is not valid: a list of 'module:attribute' user hooks"),
])
def test_a_bad_callback_is_one_line_before_any_folder(tmp_path, cli_env, value, message):
    (tmp_path / "myhooks.py").write_text(_example() + "\nNOT_A_HOOK = 3\n")
    for args in ([f"callbacks={value}"], ["-m", "seed=0,1", f"callbacks={value}"]):
        done = _train(tmp_path, cli_env, *args)
        assert done.returncode == 2 and done.stderr.strip() == f"error: {done.stderr.strip()[7:]}"
        assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr, done.stderr
        assert not (tmp_path / "outputs").exists()
