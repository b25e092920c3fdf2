"""Parallel and cluster launchers (the `launchers` extra): jobs in other processes still give a
table and the right exit code; parallel jobs spread over GPUs; the SLURM config composes."""
import importlib.util
import json
import os
import subprocess
import sys

import pytest
from hydra import compose
from trainlab.app.compose import hydra_session

from trainlab.app.job import device_for_job
from trainlab.errors import ConfigError
from trainlab.app.precheck import prepare

FAST = ["trainer.epochs=1", "dataset.subset=100", "trainer.progress=off"]


def needs(plugin: str):
    missing = importlib.util.find_spec(f"hydra_plugins.{plugin}") is None
    name = plugin.replace("_", "-")
    return pytest.mark.skipif(missing, reason=f"{name} is not installed (pip install -e '.[launchers]')")


def trainlab(args, cwd, env):
    return subprocess.run([sys.executable, "-m", "trainlab", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=400)


def statuses(sweep):
    return sorted(json.loads(p.read_text())["status"] for p in sweep.glob("*/summary.json"))


@needs("hydra_joblib_launcher")
def test_joblib_runs_jobs_in_parallel_processes_and_the_cli_reads_their_folders(tmp_path, cli_env):
    # the 5000-fold job fails when it loads its data (more folds than examples of a class): bad input, exit code 2
    res = trainlab(["train", "-m", "dataset=spirals", "dataset.cv.folds=0,5000", *FAST, "hydra/launcher=joblib",
                    "hydra.launcher.n_jobs=2", "hydra.sweep.dir=par"], tmp_path, cli_env)
    assert "Joblib.Parallel(n_jobs=2,backend=loky" in res.stdout + res.stderr
    assert res.returncode == 2, res.stderr[-2000:]
    assert "at most the size of the smallest class" in res.stderr and "Traceback" not in res.stderr
    sweep = tmp_path / "par"
    assert statuses(sweep) == ["completed", "failed"]
    assert "| 5000 | failed 1/1 |" in (sweep / "table.md").read_text()
    # trainer.threads=auto: two jobs at once share the cores (1 thread each on 2 cores), not 2 x all of them
    from trainlab.engine.threads import available_cores

    done = [json.loads(p.read_text()) for p in sweep.glob("*/summary.json")]
    assert [s["threads"] for s in done if s["status"] == "completed"] == [max(1, available_cores() // 2)]
    assert "1/2 jobs finished" in res.stdout


@needs("hydra_submitit_launcher")
def test_submitit_local_runs_a_two_job_sweep(tmp_path, cli_env):
    res = trainlab(["train", "-m", "seed=0,1", *FAST, "hydra/launcher=submitit_local",
                    "hydra.launcher.timeout_min=10", "hydra.sweep.dir=sub"], tmp_path, cli_env)
    assert res.returncode == 0, res.stderr[-2000:]
    sweep = tmp_path / "sub"
    assert statuses(sweep) == ["completed", "completed"]
    assert (sweep / ".submitit").is_dir()  # the jobs really went through submitit
    assert (sweep / "table.md").read_text().splitlines()[2].startswith("| all jobs |")


@needs("hydra_submitit_launcher")
def test_slurm_config_composes_on_top_of_submitit_slurm():
    with hydra_session():
        cfg = compose("train", overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu"],
                      return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    # gpus_per_node null: one GPU where the partition has some, none on a CPU partition (at launch, from sinfo)
    assert (launcher.partition, launcher.gpus_per_node, launcher.timeout_min) == ("gpu", None, 120)
    assert launcher._target_ == "hydra_plugins.trainlab_sweeper.trainlab_submitit_launcher.SlurmLauncher"
    assert launcher.max_num_timeout == 0  # a killed job is finished with `trainlab resume-sweep`


def test_missing_launcher_plugin_is_one_line(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("hydra_plugins.hydra_") else real(name, *a))
    with pytest.raises(ConfigError, match=r"hydra/launcher='joblib' is not valid: needs the hydra-joblib-launcher "
                                          r"plugin: pip install 'trainlab\[launchers\]'"):
        prepare(["-m", "seed=0,1", "hydra/launcher=joblib"])


def test_parallel_jobs_spread_over_the_visible_gpus():
    assert [device_for_job("auto", n, 4) for n in range(6)] == ["cuda:0", "cuda:1", "cuda:2", "cuda:3",
                                                                 "cuda:0", "cuda:1"]
    assert device_for_job("auto", 3, 1) == "auto"  # one GPU (or a SLURM job's own): nothing to spread
    assert device_for_job("auto", 3, 0) == "auto"
    assert device_for_job("cpu", 3, 4) == "cpu" and device_for_job("cuda:1", 0, 4) == "cuda:1"
    assert device_for_job("auto", None, 4) == "auto"


@needs("hydra_submitit_launcher")
def test_slurm_ddp_config_asks_for_one_gpu_per_task_and_the_preemption_signal(tmp_path, monkeypatch):
    """The sbatch script submitit would submit for hydra/launcher=slurm_ddp (no cluster here:
    a stand-in `srun` on PATH lets the executor be built; nothing is submitted)."""
    import submitit
    from hydra.utils import instantiate

    (tmp_path / "srun").write_text("#!/bin/sh\nexit 1\n")
    (tmp_path / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    with hydra_session():
        cfg = compose("train", overrides=["hydra/launcher=slurm_ddp", "hydra.launcher.tasks_per_node=8",
                                          "hydra.launcher.nodes=2", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                      return_hydra_config=True)
    launcher = instantiate(cfg.hydra.launcher)
    launcher.config = cfg
    built = []
    monkeypatch.setattr(submitit.AutoExecutor, "map_array", lambda self, fn, *args: built.append(self) or [])
    assert launcher.launch([["seed=0"]], 0) == []
    sbatch = built[0]._executor._make_submission_file_text("python -m submitit.core._submit x", "uid")
    for line in ("--nodes=2", "--ntasks-per-node=8", "--gpus-per-node=8", "--cpus-per-task=4", "--signal=USR2@120",
                 "--time=120"):
        assert f"#SBATCH {line}\n" in sbatch
    assert "export SUBMITIT_EXECUTOR=slurm\nsrun " in sbatch  # one task per process, each runs the job


@needs("hydra_submitit_launcher")
def test_bad_submitit_resources_and_a_machine_without_slurm_are_one_line(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match=r"^hydra.launcher.tasks_per_node=0 is not valid: an integer >= 1$"):
        prepare(["-m", "seed=0,1", "hydra/launcher=slurm_ddp", "hydra.launcher.tasks_per_node=0"])
    with pytest.raises(ConfigError, match=r"^hydra.launcher.nodes=-1 is not valid: an integer >= 1$"):
        prepare(["-m", "seed=0,1", "hydra/launcher=submitit_local", "hydra.launcher.nodes=-1"])
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch
    with pytest.raises(ConfigError, match=r"^hydra/launcher='slurm_ddp' is not valid: a machine with SLURM"):
        prepare(["-m", "seed=0,1", "hydra/launcher=slurm_ddp"])
