"""The command line as a user meets it: subprocesses from a scratch working directory."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

TRAINLAB = [sys.executable, "-m", "trainlab"]
FAST = ["trainer.epochs=1", "dataset.subset=100", "trainer.progress=plain"]


def trainlab(args, cwd, env, timeout=240):
    return subprocess.run([*TRAINLAB, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def only_run(root: Path) -> Path:
    runs = sorted((root / "outputs" / "runs").iterdir())
    assert len(runs) == 1, runs
    return runs[0]


def test_train_writes_a_complete_run_folder(tmp_path, cli_env):
    res = trainlab(["train", *FAST], tmp_path, cli_env)
    assert res.returncode == 0, res.stderr
    run = only_run(tmp_path)
    assert str(run.name) in res.stdout  # prints where the run folder is
    for rel in [".hydra/config.yaml", ".hydra/overrides.yaml", ".hydra/hydra.yaml", "train.log", "metrics.csv",
                "summary.json", "checkpoints/last.pt", "checkpoints/best.pt", "curves.png"]:
        assert (run / rel).is_file(), rel
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"step", "epoch", "lr", "train_loss", "train_penalty", "train_acc", "val_loss", "val_acc"} <= set(header)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert {"best", "final", "test", "wall_time_s", "versions"} <= set(summary)
    assert summary["versions"]["torch"]
    assert "epoch" in (run / "train.log").read_text()


def test_checkpoints_are_plain_data(tmp_path, cli_env):
    import torch

    assert trainlab(["train", *FAST], tmp_path, cli_env).returncode == 0
    run = only_run(tmp_path)
    last = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert {"model", "optimizer", "schedule", "scaler", "counters", "rng", "data", "preprocess", "config"} <= set(last)
    best = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
    assert set(best["model"]) == set(last["model"])
    assert not list((run / "checkpoints").glob("*.tmp*"))  # atomic writes leave no temp files


def test_help_lists_every_group_and_option(tmp_path, cli_env):
    res = trainlab(["train", "--help"], tmp_path, cli_env)
    assert res.returncode == 0
    for line in ["optimizer: adadelta, adagrad, adam", "activation: elu, gelu", "dataset: cifar10", "norm: batchnorm"]:
        assert line in res.stdout
    assert not (tmp_path / "outputs").exists()


def test_cfg_job_prints_the_composed_config(tmp_path, cli_env):
    res = trainlab(["train", "--cfg", "job", "optimizer=sgd", "optimizer.lr=0.3"], tmp_path, cli_env)
    assert res.returncode == 0, res.stderr
    cfg = yaml.safe_load(res.stdout)
    assert cfg["optimizer"] == {"name": "sgd", "lr": 0.3, "weight_decay": 0.0} | {k: v for k, v in cfg["optimizer"].items()
                                                                                 if k not in ("name", "lr", "weight_decay")}


def test_console_script_and_top_level_help(tmp_path, cli_env):
    exe = Path(sys.executable).with_name("trainlab")
    res = subprocess.run([str(exe), "--help"], cwd=tmp_path, env=cli_env, capture_output=True, text=True)
    assert res.returncode == 0 and "train" in res.stdout and "resume" in res.stdout


def test_multirun_makes_one_folder_per_job(tmp_path, cli_env):
    res = trainlab(["train", "-m", "optimizer=sgd,adam", "seed=0,1", *FAST], tmp_path, cli_env, timeout=400)
    assert res.returncode == 0, res.stderr[-2000:]
    sweeps = list((tmp_path / "outputs" / "sweeps").iterdir())
    assert len(sweeps) == 1
    jobs = sorted(p for p in sweeps[0].iterdir() if p.is_dir())
    assert len(jobs) == 4
    names = {j.name for j in jobs}
    assert any("optimizer=sgd" in n and "seed=1" in n for n in names)
    for job in jobs:
        summary = json.loads((job / "summary.json").read_text())
        assert summary["status"] == "completed"
        assert not (job / "curves.png").exists()  # trainer.figures=auto: a sweep's jobs leave theirs to `plot`
        assert summary["wall_time_s"] < summary["process_s"] and summary["setup_s"] >= 0
    seeds = {json.loads((j / "summary.json").read_text())["seed"] for j in jobs}
    assert seeds == {0, 1}
    assert (sweeps[0] / "table.md").is_file() and (sweeps[0] / "curves.png").is_file()
    assert f"`trainlab plot {sweeps[0]}` draws them" in res.stdout
    drawn = trainlab(["plot", str(sweeps[0])], tmp_path, cli_env)
    assert drawn.returncode == 0, drawn.stderr[-2000:]
    for job in jobs:
        assert (job / "curves.png").stat().st_size > 10_000 and (job / "diagnostics.png").is_file()


@pytest.mark.parametrize("when, drawn", [("always", True), ("never", False)])
def test_trainer_figures_says_which_runs_draw_their_own(tmp_path, cli_env, when, drawn):
    # drawn by the background drawer; TRAINLAB_FIGURES=wait (conftest) makes the command wait for it
    res = trainlab(["train", "-m", "seed=0", f"trainer.figures={when}", *FAST, "hydra.sweep.dir=s"], tmp_path, cli_env)
    assert res.returncode == 0, res.stderr[-2000:]
    job = next(p for p in (tmp_path / "s").iterdir() if p.is_dir())
    assert (job / "curves.png").is_file() == drawn and (job / "diagnostics.png").is_file() == drawn
    assert ("`trainlab plot" in res.stdout) != drawn
    single = trainlab(["train", f"trainer.figures={when}", *FAST, "hydra.run.dir=r"], tmp_path, cli_env)
    assert single.returncode == 0 and (tmp_path / "r" / "curves.png").is_file() == drawn


def test_a_bad_trainer_figures_is_refused_in_one_line(tmp_path, cli_env):
    res = trainlab(["train", "trainer.figures=sometimes"], tmp_path, cli_env)
    assert res.returncode == 2 and not (tmp_path / "outputs").exists()
    assert "trainer.figures" in res.stderr and "sometimes" in res.stderr and "always" in res.stderr


def test_multirun_with_a_failing_job_finishes_the_others_and_exits_nonzero(tmp_path, cli_env):
    # 5000 folds need 5000 examples of every class: only the data can tell, so that job fails
    # when it loads its data; the other trains (a sweep of valid jobs: test_multirun_makes_one_folder_per_job)
    bad = trainlab(["train", "-m", "dataset.cv.folds=0,5000", *FAST, "hydra.sweep.dir=bad"], tmp_path, cli_env,
                   timeout=400)
    assert bad.returncode != 0
    assert "dataset.cv.folds=5000 is not valid: at most the size of the smallest class" in bad.stderr
    assert "Traceback" not in bad.stderr
    (good,) = [d for d in (tmp_path / "bad").iterdir() if d.name.startswith("0_")]
    assert json.loads((good / "summary.json").read_text())["status"] == "completed"


def test_resume_command_continues_the_same_folder(tmp_path, cli_env):
    res = trainlab(["train", "trainer.epochs=3", "trainer.stop_after=1", "dataset.subset=100",
                    "trainer.progress=plain"], tmp_path, cli_env)
    assert res.returncode == 0, res.stderr
    run = only_run(tmp_path)
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"
    res = trainlab(["resume", str(run), "trainer.stop_after=null"], tmp_path, cli_env)
    assert res.returncode == 0, res.stderr
    assert len(list((tmp_path / "outputs" / "runs").iterdir())) == 1
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_run"] == 3
    assert [int(r.split(",")[1]) for r in (run / "metrics.csv").read_text().splitlines()[1:]] == [0, 1, 2, 3]  # 0: before the first step


def test_installed_package_runs_from_anywhere(tmp_path, cli_env):
    """A plain (non-editable) `pip install .` works from another folder: configs ship as package data."""
    target = tmp_path / "site"
    repo = Path(__file__).resolve().parents[1]
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(repo)],
                         capture_output=True, text=True)
    if pip.returncode != 0:
        pytest.skip(f"could not build the package here: {pip.stderr[-300:]}")
    assert (target / "trainlab" / "conf" / "hydra" / "job_logging" / "trainlab.yaml").is_file()
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = cli_env | {"PYTHONPATH": str(target)}
    where = subprocess.run([sys.executable, "-c", "import trainlab; print(trainlab.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True).stdout
    assert where.startswith(str(target))
    res = subprocess.run([*TRAINLAB, "train", *FAST], cwd=work, env=env, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr
    assert only_run(work).is_dir()


EXITING = """
import atexit, sys, threading, time
from pathlib import Path
from trainlab.app.cli import exit_now
atexit.register(lambda: Path(sys.argv[1]).write_text("atexit ran"))
if sys.argv[2] == "thread":  # a non-daemon thread still working: the normal exit waits for it
    threading.Thread(target=lambda: (time.sleep(0.3), Path(sys.argv[1] + ".thread").write_text("done"))).start()
sys.stdout.write("unflushed " * 2000)  # still in the buffer when exit_now is called
exit_now(3)
"""


@pytest.mark.parametrize("mode", ["plain", "thread"])
def test_exit_now_runs_the_atexit_handlers_flushes_and_keeps_the_code(tmp_path, mode):
    """The CLI ends without the interpreter's teardown (trainlab.app.cli.exit_now): what teardown would
    still do for the user happens first, and a running non-daemon thread is waited for."""
    marker = tmp_path / "marker"
    done = subprocess.run([sys.executable, "-c", EXITING, str(marker), mode], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 3, done.stderr
    assert done.stdout == "unflushed " * 2000 and marker.read_text() == "atexit ran"
    if mode == "thread":
        assert (tmp_path / "marker.thread").read_text() == "done"
