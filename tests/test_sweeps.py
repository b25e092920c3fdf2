"""Sweeps as a user runs them: failures, resuming in the same folder, cross-validation."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from hydra_plugins.trainlab_sweeper.trainlab_sweeper import batches
from trainlab.errors import ConfigError
from trainlab.app.precheck import prepare
from trainlab.sweep.resume import outcomes, pending_jobs, resume_sweep_args
from trainlab.sweep.runs import load_sweep

TRAINLAB = [sys.executable, "-m", "trainlab"]
FAST = ["dataset.subset=100", "trainer.progress=off"]


def trainlab(args, cwd, env, timeout=300):
    return subprocess.run([*TRAINLAB, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def files_and_mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*")) if p.is_file()}


def job_dirs(sweep: Path) -> dict[int, Path]:
    return {int(p.name.split("_")[0]): p for p in sweep.iterdir() if p.is_dir() and p.name[0].isdigit()}


def status(job: Path) -> str:
    return json.loads((job / "summary.json").read_text())["status"]


@pytest.fixture
def flaky_env(tmp_path, cli_env):
    """A user architecture whose training step raises while a marker file exists: a job
    that fails for a reason outside its config, and works once the cause is gone."""
    (tmp_path / "conf" / "arch").mkdir(parents=True)
    (tmp_path / "conf" / "arch" / "flaky.yaml").write_text("name: flaky\nhidden: 16\n")
    (tmp_path / "flakynet.py").write_text(textwrap.dedent('''
        import math, os
        from dataclasses import dataclass
        from pathlib import Path
        import torch
        from torch import nn
        from trainlab.nn.archs import ARCHS

        @ARCHS.option("flaky", "A net that fails while the marker file exists.")
        @dataclass
        class FlakySchema:
            name: str = "flaky"
            hidden: int = 16

        class Flaky(nn.Sequential):
            def forward(self, x):
                if torch.is_grad_enabled() and Path(os.environ["FLAKY_MARKER"]).exists():
                    raise RuntimeError("flaky network: the marker file is there")
                return super().forward(x)

        @ARCHS.builder("flaky")
        def build_flaky(cfg, parts, input_shape, num_classes):
            return Flaky(nn.Flatten(), nn.Linear(math.prod(input_shape), cfg.hidden),
                         *parts.after_layer(cfg.hidden, conv=False), nn.Linear(cfg.hidden, num_classes))
    '''))
    marker = tmp_path / "marker"
    marker.touch()
    return cli_env | {"PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), cli_env.get("PYTHONPATH")])),
                      "TRAINLAB_PLUGINS": "flakynet", "TRAINLAB_CONFIG_PATH": str(tmp_path / "conf"),
                      "FLAKY_MARKER": str(marker)}


def test_failed_and_interrupted_jobs_are_resumed_and_finished_jobs_kept(tmp_path, flaky_env):
    sweep = tmp_path / "sweep"
    # jobs: 0 mlp/1 epoch completes, 1 mlp/2 epochs stops after 1 (interrupted), 2 and 3 fail (flaky)
    first = trainlab(["train", "-m", "arch=mlp,flaky", "trainer.epochs=1,2", "trainer.stop_after=1", *FAST,
                      f"hydra.sweep.dir={sweep}"], tmp_path, flaky_env)
    assert first.returncode == 1, first.stderr[-2000:]
    assert "Traceback" not in first.stderr
    assert first.stderr.count("RuntimeError: flaky network") == 2
    jobs = job_dirs(sweep)
    assert [status(jobs[n]) for n in range(4)] == ["completed", "interrupted", "failed", "failed"]
    table = (sweep / "table.md").read_text()
    assert "| flaky | 1 | failed 1/1 |" in table and "| mlp | 2 | interrupted 1/1 |" in table
    assert (sweep / "table.csv").is_file() and (sweep / "curves.png").is_file()
    assert (sweep / "table.png").is_file()  # drawn at the end of every sweep, failed rows included

    kept = files_and_mtimes(jobs[0])
    (tmp_path / "marker").unlink()  # the cause of the failures is fixed
    second = trainlab(["resume-sweep", str(sweep)], tmp_path, flaky_env)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "1 of 4 jobs already have a result, 3 to run" in second.stdout
    assert job_dirs(sweep) == jobs  # same numbers, same folders, nothing new
    assert files_and_mtimes(jobs[0]) == kept  # the finished job was not touched
    # the interrupted job continued from its checkpoint to the end
    assert status(jobs[1]) == "completed"
    assert "resumed from" in (jobs[1] / "train.log").read_text()
    assert [r.split(",")[1] for r in (jobs[1] / "metrics.csv").read_text().splitlines()[1:]] == ["0", "1", "2"]
    # the failed jobs had no checkpoint: they started over (job 3 then stops after its 1-epoch slice)
    assert status(jobs[2]) == "completed" and status(jobs[3]) == "interrupted"
    assert len((jobs[3] / "metrics.csv").read_text().splitlines()) == 3  # header + step 0 + 1 epoch, no stale rows
    assert "RuntimeError" in (jobs[2] / "train.log").read_text()  # the first attempt's log is kept
    for num, job in jobs.items():
        assert yaml.safe_load((job / ".hydra" / "hydra.yaml").read_text())["hydra"]["job"]["num"] == num
    table = (sweep / "table.md").read_text()
    assert "failed" not in table and "| mlp | 2 | " in table


def test_cross_validation_sweep_reports_mean_and_std_over_folds(tmp_path, cli_env):
    res = trainlab(["train", "-m", "dataset.cv.folds=3", "dataset.cv.fold=range(3)", "trainer.epochs=1", *FAST,
                    "hydra.sweep.dir=cv"], tmp_path, cli_env)
    assert res.returncode == 0, res.stderr[-2000:]
    records = load_sweep(tmp_path / "cv")
    assert sorted(r.overrides["dataset.cv.fold"] for r in records) == ["0", "1", "2"]
    # each fold validated on a different third of the training split
    assert len({r.summary["best"]["val_acc"] for r in records}) > 1
    lines = (tmp_path / "cv" / "table.md").read_text().splitlines()
    assert lines[0].startswith("| configuration | best val acc (%) |")
    assert lines[2].startswith("| all jobs |") and " ± " in lines[2] and lines[2].endswith("| 3 |  |")


def make_job(sweep: Path, num: int, overrides: list[str], state: str | None) -> Path:
    job = sweep / f"{num}_{','.join(overrides)}"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (job / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"job": {"num": num}}}))
    if state:
        (job / "summary.json").write_text(json.dumps({"status": state, "error": "RuntimeError: boom"}))
    return job


def test_pending_jobs_keep_results_and_rerun_the_rest(tmp_path):
    planned = [[f"activation={a}", "seed=0"] for a in ("relu", "tanh", "elu", "selu", "gelu")]
    make_job(tmp_path, 0, planned[0], "completed")
    make_job(tmp_path, 1, planned[1], "diverged")  # a result: rerunning repeats it
    make_job(tmp_path, 2, planned[2], "failed")
    make_job(tmp_path, 3, [*planned[3], "trainer.device=cpu"], None)  # killed; device is not part of the identity
    assert pending_jobs(tmp_path, planned, {"trainer.device"}) == [2, 3, 4]
    outs = {Path(o["run_dir"]).name[0]: o for o in outcomes(tmp_path)}
    assert outs["2"]["status"] == "failed" and outs["2"]["kind"] == "exception"
    assert outs["3"]["status"] == "failed" and "no summary.json" in outs["3"]["error"]
    with pytest.raises(ConfigError, match=r"job 1 ran activation=tanh seed=0 but this sweep's job 1 is "
                                          r"activation=elu seed=0"):
        pending_jobs(tmp_path, [planned[0], planned[2]], set())


def test_launch_batches_keep_job_numbers():
    assert batches([0, 1, 2, 5, 6, 9], None) == [(0, 3), (5, 2), (9, 1)]
    assert batches([0, 1, 2, 3, 4], 2) == [(0, 2), (2, 2), (4, 1)]
    assert batches([], None) == []


def test_resume_reuses_the_recorded_overrides(tmp_path):
    saved = {"hydra": {"overrides": {
        "task": ["activation=relu,tanh", "trainer.epochs=3"],
        "hydra": ["hydra/launcher=joblib", "hydra.sweep.dir='old'", "hydra.mode=MULTIRUN", "hydra.sweeper.resume=true"]}}}
    (tmp_path / "multirun.yaml").write_text(yaml.safe_dump(saved))
    args = resume_sweep_args(tmp_path, ["trainer.epochs=5", "hydra.launcher.n_jobs=2"])
    assert args == ["-m", "activation=relu,tanh", "hydra/launcher=joblib", "trainer.epochs=5", "hydra.launcher.n_jobs=2",
                    f"hydra.sweep.dir='{tmp_path}'", "hydra.sweeper.resume=true"]
    with pytest.raises(ConfigError, match="multirun.yaml"):
        resume_sweep_args(tmp_path / "nowhere", [])


def test_resume_needs_the_same_sweep_in_an_existing_folder(tmp_path):
    with pytest.raises(ConfigError, match=r"hydra.sweeper.resume=True is not valid: with hydra.sweep.dir="):
        prepare(["-m", "seed=0,1", "hydra.sweeper.resume=true"])
    with pytest.raises(ConfigError, match="an existing sweep folder to resume"):
        prepare(["-m", "seed=0,1", f"hydra.sweep.dir={tmp_path / 'nowhere'}", "hydra.sweeper.resume=true"])
    make_job(tmp_path, 0, ["seed=5"], "completed")
    with pytest.raises(ConfigError, match="its job 0 ran seed=5 but this sweep's job 0 is seed=0"):
        prepare(["-m", "seed=0,1", f"hydra.sweep.dir={tmp_path}", "hydra.sweeper.resume=true"])
    with pytest.raises(ConfigError, match="a new folder: this one holds a sweep"):  # no silent overwriting
        prepare(["-m", "seed=0,1", f"hydra.sweep.dir={tmp_path}"])
    make_job(tmp_path / "good", 0, ["seed=0"], "completed")
    ready = prepare(["-m", "seed=0,1", f"hydra.sweep.dir={tmp_path / 'good'}", "hydra.sweeper.resume=true"])
    assert ready.jobs == 1 and ready.sweep_dir == tmp_path / "good"  # only job 1 is left to check and run


def test_an_in_process_sweep_does_not_grow_per_job(tmp_path, monkeypatch):
    """Issue 12: per-job memory rose over a long in-process sweep. Hydra's JobReturns kept every job's
    config (~1,300 Python objects a job) and glibc kept freed heap pages; trainlab.app.job.ReleaseJobConfig
    lets both go. Bounded here: Python objects per job (deterministic) and resident memory (noisy)."""
    import gc

    import trainlab.app.job as job
    from trainlab.app.cli import main

    def rss_mb():
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    samples, original = [], job.TrainJob.__call__

    def measured(self, cfg):
        out = original(self, cfg)
        gc.collect()  # cyclic garbage is not growth
        samples.append((len(gc.get_objects()), rss_mb()))
        return out

    monkeypatch.setattr(job.TrainJob, "__call__", measured)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "-m", "seed=range(6)", "trainer.epochs=1", "dataset.subset=100", "trainer.progress=off",
                 "trainer.save_checkpoints=false", "trainer.diagnostics=off"]) == 0
    (objects_2, rss_2), (objects_6, rss_6) = samples[1], samples[-1]
    print(f"after job 2: {objects_2} objects, {rss_2:.1f} MB; after job 6: {objects_6}, {rss_6:.1f} MB")
    assert objects_6 - objects_2 < 4 * 100, samples  # was 4 * ~1,300
    assert rss_6 - rss_2 < 10, samples  # MB over 4 jobs


def test_a_seed_replicate_is_composed_as_hydra_composes_it():
    """trainlab.sweep.replicas copies the first replicate's composition: byte for byte what Hydra
    composes for that job, wherever the seed sits among the overrides; other jobs go to Hydra."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from trainlab.app.compose import hydra_session
    from trainlab.sweep.replicas import ReplicaComposer

    with hydra_session():
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration(config_name="train", overrides=["hydra.sweep.dir=/tmp/sweep"],
                                           run_mode=RunMode.MULTIRUN)
        composer = ReplicaComposer(loader)
        for job in (["seed=0", "trainer.epochs=1"], ["seed=7", "trainer.epochs=1"],
                    ["optimizer=sgd", "seed=3"], ["optimizer=sgd", "seed=11"], ["seed=5"]):
            copied, hydra = composer.load_sweep_config(master, job), loader.load_sweep_config(master, job)
            assert OmegaConf.to_yaml(copied) == OmegaConf.to_yaml(hydra), job
            assert copied.hydra.job.override_dirname == ",".join(sorted(job))
        assert len(composer.composed) == 3  # one composition per group of replicates


def test_validation_is_reused_for_a_replicate_and_still_checks_its_seed():
    from conftest import compose_cfg
    from trainlab.config import validate

    cfg = compose_cfg(["seed=1"])
    first = validate(cfg)
    cfg.seed = 2
    again = validate(cfg)
    assert again.seed == 2 and first.seed == 1 and again.trainer == first.trainer and again.trainer is not first.trainer
    cfg.seed = -1
    with pytest.raises(ConfigError, match="seed"):
        validate(cfg)
