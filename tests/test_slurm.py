"""SLURM without a cluster: rendezvous from SLURM's variables, the preemption signal (SIGUSR2) handed
over to submitit's handler after the run is saved, a requeued job resuming by itself, and (slow) a
2-task DDP job through submitit's local executor that is signalled, requeued and resumed."""
import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from conftest import run_tiny
from test_resume import assert_same_tensors, final_state, metrics_without_time
from trainlab.engine import distributed

needs_submitit = pytest.mark.skipif(importlib.util.find_spec("submitit") is None,
                                    reason="submitit is not installed (pip install -e '.[launchers]')")

# dropout, augmentation and EMA on: the RNG states a resume must restore
ARGS = ["trainer.epochs=3", "regularizer=dropout", "regularizer.dropout.p=0.3", "augment=[flip,noise]",
        "trainer.ema.decay=0.9", "optimizer=momentum", "dataset.subset=160", "trainer.batch_size=16",
        "trainer.progress=off", "trainer.threads=1"]  # one thread count for the in-process twin (run_tiny's)
SLURM_ENV = {"SLURM_JOB_ID": "4242", "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NTASKS": "1",
             "SLURM_JOB_NUM_NODES": "1", "SLURM_NODEID": "0", "SLURM_JOB_NODELIST": "node001"}
DIST_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SUBMITIT_EXECUTOR")


@pytest.fixture
def slurm_env(monkeypatch):
    """monkeypatch, with SLURM's and torch.distributed's variables cleared; the environment is restored
    afterwards, including what distributed.init() exports (RANK, MASTER_ADDR, ...)."""
    saved = dict(os.environ)
    for key in [*DIST_VARS, *(k for k in os.environ if k.startswith(("SLURM_", "SUBMITIT_")))]:
        monkeypatch.delenv(key, raising=False)
    yield monkeypatch
    os.environ.clear()
    os.environ.update(saved)


@needs_submitit

def usr2_after_step(monkeypatch, n: int) -> None:
    """Send this process SIGUSR2 right after optimizer step n, as SLURM would while training."""
    import trainlab.engine.loop as loop_mod

    step, count = loop_mod.Loop._step, [0]

    def signalled(self, x, target):
        out = step(self, x, target)
        count[0] += 1
        if count[0] == n:
            os.kill(os.getpid(), signal.SIGUSR2)
        return out

    monkeypatch.setattr(loop_mod.Loop, "_step", signalled)


def test_ranks_meet_on_the_first_node_at_a_port_of_the_job(slurm_env):
    env = {"SUBMITIT_EXECUTOR": "slurm", "SLURM_JOB_ID": "731", "SLURM_JOB_NODELIST": "gpu[017-018],cpu3",
           "SLURM_NTASKS": "8", "SLURM_PROCID": "5", "SLURM_LOCALID": "1", "SLURM_JOB_NUM_NODES": "2",
           "SLURM_NODEID": "1"}
    for k, v in env.items():
        slurm_env.setenv(k, v)
    assert distributed.env_info() == distributed.DistInfo(5, 8, 1)
    first = distributed._rendezvous()
    assert first["MASTER_ADDR"] == "gpu017" and 20000 <= int(first["MASTER_PORT"]) <= 60000
    assert distributed._rendezvous() == first  # every rank derives the same
    slurm_env.setenv("SLURM_JOB_ID", "732")
    assert distributed._rendezvous()["MASTER_PORT"] != first["MASTER_PORT"]  # another job on the node
    slurm_env.setenv("MASTER_PORT", "31313")
    assert distributed._rendezvous()["MASTER_PORT"] == "31313"  # the user's choice is kept
    slurm_env.delenv("SUBMITIT_EXECUTOR")  # plain srun: the same rule from SLURM's variables
    slurm_env.setenv("SLURM_STEP_ID", "0")
    assert distributed._rendezvous() == {"MASTER_ADDR": "gpu017", "MASTER_PORT": "31313"}

    joined = {}
    slurm_env.setattr(distributed.dist, "init_process_group", lambda backend: joined.update(os.environ))
    slurm_env.setattr(distributed.dist, "is_initialized", lambda: False)
    assert distributed.init("cpu") == distributed.DistInfo(5, 8, 1)
    assert {k: joined[k] for k in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK")} == {
        "MASTER_ADDR": "gpu017", "MASTER_PORT": "31313", "RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1"}


def test_the_batch_script_of_a_several_task_job_is_one_process(slurm_env):
    """`sbatch --ntasks=2 --wrap "trainlab train"`: the script runs once (SLURM_NTASKS=2, SLURM_PROCID=0, no
    step); taking it for rank 0 of 2 left it waiting for a rank 1 that never starts. Inside srun it is one of 2."""
    for k, v in {"SLURM_JOB_ID": "12", "SLURM_NTASKS": "2", "SLURM_PROCID": "0", "SLURM_LOCALID": "0",
                 "SLURM_JOB_NODELIST": "vm", "SLURM_JOB_NUM_NODES": "1"}.items():
        slurm_env.setenv(k, v)
    assert distributed.env_info() == distributed.SINGLE
    for k, v in {"SLURM_STEP_ID": "0", "SLURM_STEP_NUM_TASKS": "2", "SLURM_PROCID": "1", "SLURM_LOCALID": "1"}.items():
        slurm_env.setenv(k, v)
    assert distributed.env_info() == distributed.DistInfo(1, 2, 1)


def test_multi_node_srun_without_submitit_is_one_line(slurm_env):
    for k, v in {"SLURM_JOB_ID": "9", "SLURM_JOB_NUM_NODES": "2", "SLURM_NTASKS": "4", "SLURM_PROCID": "0"}.items():
        slurm_env.setenv(k, v)
    slurm_env.setattr(distributed, "job_environment", lambda: None)  # as without submitit
    with pytest.raises(Exception, match=r"SLURM_JOB_NUM_NODES='2' is not valid: 1, or install submitit"):
        distributed._rendezvous()


SCRIPT = textwrap.dedent("""
    import json, os, signal, sys
    import torch
    torch.set_num_threads(1)  # as in the test process: the same reduction order, bit for bit
    run_dir, marker, stop_at = sys.argv[1], sys.argv[2], int(sys.argv[3])

    def fake_submitit(signum, frame):
        # stands in for submitit's handler: records what a requeued job will find, then exits like it
        summary = json.load(open(os.path.join(run_dir, "summary.json")))
        state = torch.load(os.path.join(run_dir, "checkpoints", "last.pt"), weights_only=True)
        leftovers = [n for _, _, files in os.walk(run_dir) for n in files if ".tmp" in n]
        json.dump({"signal": signum, "status": summary["status"], "summary_signal": summary["signal"],
                   "step": state["counters"]["step"], "leftovers": leftovers}, open(marker, "w"))
        sys.exit(-1)
    signal.signal(signal.SIGUSR2, fake_submitit)

    import trainlab.engine.loop as loop_mod
    steps, step = [0], loop_mod.Loop._step
    def signalled(self, x, target):
        out = step(self, x, target)
        steps[0] += 1
        if steps[0] == stop_at:  # as SLURM would: SIGUSR2 arrives while training
            os.kill(os.getpid(), signal.SIGUSR2)
        return out
    loop_mod.Loop._step = signalled
    from trainlab.app.cli import main
    sys.exit(main(["train", *sys.argv[4:]]))
""")


def start_job(tmp_path, cli_env, stop_at: int, **extra_env):
    env = {k: v for k, v in cli_env.items() if k not in DIST_VARS and not k.startswith(("SLURM_", "SUBMITIT_"))}
    env |= SLURM_ENV | extra_env
    return subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "job"), str(tmp_path / "handed_over.json"),
                           str(stop_at), *ARGS, f"hydra.run.dir={tmp_path / 'job'}"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_sigusr2_finishes_the_step_saves_then_hands_over_to_the_previous_handler(tmp_path, cli_env):
    # SIGUSR2 at step 13 (of 30): the step finishes, last.pt and an `interrupted` summary are written,
    # and only then the handler that was installed before (submitit's, here a stand-in) is called
    res = start_job(tmp_path, cli_env, stop_at=13)
    assert res.returncode == 255, res.stderr[-3000:]  # the stand-in's sys.exit(-1), as submitit's
    handed = json.loads((tmp_path / "handed_over.json").read_text())
    assert handed == {"signal": int(signal.SIGUSR2), "status": "interrupted", "summary_signal": "SIGUSR2",
                      "step": 13, "leftovers": []}


def test_a_requeued_job_resumes_from_its_checkpoint_and_ends_as_if_uninterrupted(tmp_path, slurm_env):
    """In-process (fast): SIGUSR2 stops the job mid-epoch, then SLURM starts the same command again
    (SLURM_RESTART_COUNT=1): it resumes from last.pt in its folder instead of refusing the folder."""
    import trainlab.engine.loop as loop_mod
    from trainlab.app.cli import main

    for k, v in SLURM_ENV.items():
        slurm_env.setenv(k, v)
    job, calls, step = tmp_path / "job", [], loop_mod.Loop._step
    usr2_after_step(slurm_env, 13)
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: calls.append(signum))  # stands in for submitit's
    try:
        assert main(["train", *ARGS, f"hydra.run.dir={job}"]) == 128 + signal.SIGUSR2
        assert calls == [signal.SIGUSR2]
        assert final_state(job)["counters"]["step"] == 13
        slurm_env.setattr(loop_mod.Loop, "_step", step)
        slurm_env.setenv("SLURM_RESTART_COUNT", "1")
        assert main(["train", *ARGS, f"hydra.run.dir={job}"]) == 0
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert json.loads((job / "summary.json").read_text())["status"] == "completed"
    run_tiny(tmp_path / "whole", ARGS)
    a, b = final_state(tmp_path / "whole"), final_state(job)
    for key in ("model", "optimizer", "ema", "schedule", "data"):
        assert_same_tensors(a[key], b[key])
    assert metrics_without_time(job) == metrics_without_time(tmp_path / "whole")


def test_a_job_started_again_without_a_restart_count_is_still_refused(tmp_path, cli_env):
    (tmp_path / "job").mkdir()
    (tmp_path / "job" / "summary.json").write_text("{}")
    res = start_job(tmp_path, cli_env, stop_at=0)
    assert res.returncode == 2
    assert "this one holds a run (use `trainlab resume` to continue it)" in res.stderr


PREEMPT_PLUGIN = textwrap.dedent("""
    # Imported by every task of every job (TRAINLAB_PLUGINS): in the first attempt of job 0, SIGUSR2
    # reaches each task during training, rank 1 one step after rank 0, as SLURM signals a job's tasks.
    # The ranks vote after every step (not every 0.2 s), so they stop mid-epoch, after step 4 of 10.
    import os, signal
    from pathlib import Path
    from hydra.core.hydra_config import HydraConfig
    import trainlab.engine.loop as loop_mod
    from trainlab.engine import distributed

    distributed.FlagVote.EVERY_S = 0
    step, steps = loop_mod.Loop._step, [0]

    def signalled(self, x, target):
        out = step(self, x, target)
        steps[0] += 1
        rank = distributed.current().rank
        marker = Path(os.environ["PREEMPT_MARKERS"]) / f"signalled_{rank}"
        if HydraConfig.get().job.num == 0 and steps[0] == 3 + rank and not marker.exists():
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGUSR2)
        return out

    loop_mod.Loop._step = signalled
""")


@pytest.mark.slow
@needs_submitit
def test_two_task_ddp_job_through_submitit_is_preempted_requeued_and_resumed(tmp_path, cli_env):
    """End to end through Hydra's submitit launcher (local executor, 2 tasks per job = 2 gloo ranks):
    job 0 gets SIGUSR2 mid-training, saves, is requeued by submitit's own handler, resumes in its folder
    and ends equal to job 1, the same training uninterrupted (trainer.progress differs, nothing else)."""
    (tmp_path / "preempt_once.py").write_text(PREEMPT_PLUGIN)
    env = {k: v for k, v in cli_env.items() if k not in DIST_VARS and not k.startswith(("SLURM_", "SUBMITIT_"))}
    env |= {"PYTHONPATH": str(tmp_path), "TRAINLAB_PLUGINS": "preempt_once", "PREEMPT_MARKERS": str(tmp_path),
            "OMP_NUM_THREADS": "1"}
    args = [a for a in ARGS if not a.startswith(("trainer.progress", "trainer.batch_size"))] + ["trainer.batch_size=8"]
    res = subprocess.run([sys.executable, "-m", "trainlab", "train", "-m", "hydra/launcher=submitit_local",
                          "hydra.launcher.tasks_per_node=2", "trainer.device=cpu", "trainer.progress=off,plain",
                          *args, "hydra.sweep.dir=sweep"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.glob("signalled_*")) == ["signalled_0", "signalled_1"]
    jobs = sorted(p for p in (tmp_path / "sweep").iterdir() if p.name[0].isdigit())
    assert [json.loads((j / "summary.json").read_text())["status"] for j in jobs] == ["completed", "completed"]
    logs = "".join(p.read_text() for p in (tmp_path / "sweep" / ".submitit").rglob("*_0_log.*"))
    assert "handing over to the job's handler" in logs and "Requeued job" in logs
    log = (jobs[0] / "train.log").read_text()  # rank 0's alone: one line per event
    assert log.count("interrupted: results in") == 1 and log.count("completed: results in") == 1
    assert log.count("resuming from") == 1 and log.count("job 0 started again by submitit (requeued)") == 1
    assert "resumed from" in log and "at epoch 0, step 4" in log  # mid-epoch: each rank's partial sums restored
    assert (jobs[1] / "train.log").read_text().count("completed: results in") == 1
    import yaml  # every task wrote .hydra/: the same bytes, still whole

    recorded = yaml.safe_load((jobs[0] / ".hydra" / "overrides.yaml").read_text())
    assert "trainer.progress=off" in recorded and "hydra.launcher.tasks_per_node=2" not in recorded
    assert yaml.safe_load((jobs[0] / ".hydra" / "config.yaml").read_text())["trainer"]["batch_size"] == 8
    a, b = final_state(jobs[1]), final_state(jobs[0])
    assert len(b["ranks"]) == 2
    for key in ("model", "optimizer", "ema", "schedule", "data", "ranks"):
        assert_same_tensors(a[key], b[key])
    assert metrics_without_time(jobs[0]) == metrics_without_time(jobs[1])


def test_not_requeued_at_the_time_limit_the_run_stays_interrupted_for_resume_sweep(tmp_path, monkeypatch, caplog):
    """submitit raises instead of requeueing (time limit, max_num_timeout used up): the run keeps its
    `interrupted` summary and last.pt, the job returns normally, `trainlab resume-sweep` finishes it."""

    def submitit_at_time_limit(signum, frame):
        raise RuntimeError("Job not requeued because: timed-out too many times.")

    usr2_after_step(monkeypatch, 5)
    previous = signal.signal(signal.SIGUSR2, submitit_at_time_limit)
    try:
        with caplog.at_level("WARNING", logger="trainlab"):
            summary = run_tiny(tmp_path, ARGS)
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert summary["status"] == "interrupted" and summary["signal"] == "SIGUSR2"
    assert final_state(tmp_path)["counters"]["step"] == 5
    assert "not requeued (Job not requeued because: timed-out too many times.)" in caplog.text
