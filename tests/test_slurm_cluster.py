"""Sweeps on a real SLURM cluster (marker `slurm`: `bash scripts/slurm_local.sh start`, then
`pytest -m slurm`; .ci/run does both after the default suite). Every job goes through real sbatch,
srun, scontrol requeue and scancel on the one-node cluster the script starts (the helpers that read
the cluster are tested without one in tests/test_slurm_helpers.py)."""
import json
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from test_resume import assert_same_tensors, final_state, metrics_without_time

slurm = pytest.mark.slurm
SLURM = ["hydra/launcher=slurm", "hydra.launcher.partition=debug", "hydra.launcher.cpus_per_task=1",
         "hydra.launcher.mem_gb=1", "hydra.launcher.timeout_min=10"]
TINY = ["dataset.subset=200", "trainer.batch_size=20", "trainer.threads=1"]
# dropout, augmentation and EMA on: the RNG states a resume must restore (as tests/test_slurm.py)
EXACT = ["trainer.epochs=3", "regularizer=dropout", "regularizer.dropout.p=0.3", "augment=[flip,noise]",
         "trainer.ema.decay=0.9", "optimizer=momentum", "dataset.subset=160", "trainer.batch_size=16",
         "trainer.threads=1"]
# Imported by every job (TRAINLAB_PLUGINS): job SLOW_JOB's first attempt sleeps 0.2 s after each step, so
# the test can requeue or cancel it mid-training from outside. Sleeping changes no number.
SLOW_PLUGIN = textwrap.dedent("""
    import os, time
    from hydra.core.hydra_config import HydraConfig
    import trainlab.engine.loop as loop_mod

    step = loop_mod.Loop._step

    def slowed(self, x, target):
        out = step(self, x, target)
        slow = os.environ.get("SLOW_JOB") is not None and not os.environ.get("SLURM_RESTART_COUNT")
        if slow and str(HydraConfig.get().job.num) == os.environ["SLOW_JOB"]:
            time.sleep(0.2)
        return out

    loop_mod.Loop._step = slowed
""")


@pytest.fixture(scope="module")
def cluster():
    """The running cluster's node, or a failure saying how to start it."""
    try:
        state = subprocess.run(["sinfo", "-h", "-N", "-o", "%t"], capture_output=True, text=True, timeout=20).stdout
    except OSError:
        state = ""
    if state.strip() not in ("idle", "mix", "alloc"):
        pytest.fail(f"no SLURM cluster answers (sinfo: {state.strip()!r}): bash scripts/slurm_local.sh start")


@pytest.fixture
def env(tmp_path, cli_env):
    (tmp_path / "slow_job.py").write_text(SLOW_PLUGIN)
    out = {k: v for k, v in cli_env.items() if not k.startswith(("SLURM_", "SUBMITIT_"))}
    return out | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(tmp_path), "TRAINLAB_PLUGINS": "slow_job"}


def trainlab(args, cwd, env, wait=True):
    cmd = [sys.executable, "-m", "trainlab", *args]
    if not wait:
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=400)


def job_folders(sweep: Path) -> list[Path]:
    return sorted((p for p in sweep.iterdir() if p.name[0].isdigit()), key=lambda p: int(p.name.split("_")[0]))


def status(run: Path) -> str:
    return json.loads((run / "summary.json").read_text())["status"]


def slurm_ids(sweep: Path) -> list[str]:
    """The SLURM job ids (`<array>_<index>`) of a sweep's jobs, from submitit's folders."""
    return sorted((p.name for p in (sweep / ".submitit").iterdir() if re.fullmatch(r"\d+_\d+", p.name)),
                  key=lambda name: tuple(map(int, name.split("_"))))


def scontrol(job_id: str) -> dict[str, str]:
    out = subprocess.run(["scontrol", "show", "job", "--oneliner", job_id], capture_output=True, text=True).stdout
    return dict(item.split("=", 1) for item in out.split() if "=" in item)


def ended(job_id: str) -> bool:
    return scontrol(job_id).get("JobState") not in ("PENDING", "RUNNING", "COMPLETING", "REQUEUED")


def wait_for(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def evaluated_epochs(run: Path) -> int:
    """Evaluations after an epoch in metrics.csv so far (the step-0 evaluation excluded)."""
    try:
        rows = (run / "metrics.csv").read_text().splitlines()[1:]
    except OSError:
        return 0
    return sum(1 for r in rows if r and not r.startswith("0,"))


@slurm
def test_a_four_job_grid_sweep_runs_through_sbatch(cluster, tmp_path, env):
    res = trainlab(["train", "-m", *SLURM, "activation=relu,tanh", "seed=0,1", "trainer.epochs=1", *TINY,
                    "hydra.sweep.dir=sweep"], tmp_path, env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = res.stdout + res.stderr
    assert "Traceback" not in out and "sacct" not in out  # no accounting here: squeue, without a warning
    sweep = tmp_path / "sweep"
    jobs = job_folders(sweep)
    assert len(jobs) == 4 and [status(j) for j in jobs] == ["completed"] * 4
    assert len({(j / "checkpoints" / "last.pt").stat().st_ino for j in jobs}) == 4  # each its own folder
    table = (sweep / "table.md").read_text()
    assert "| relu |" in table and "| tanh |" in table and "4/4 jobs finished" in res.stdout
    ids = slurm_ids(sweep)
    assert len(ids) == 4 and len({i.split("_")[0] for i in ids}) == 1  # one job array
    for job_id in ids:  # SLURM's word on each job, once its processes are gone, matches trainlab's `completed`
        wait_for(lambda: ended(job_id), 60, f"SLURM to end job {job_id}")
        info = scontrol(job_id)
        assert (info["JobState"], info["ExitCode"], info["Partition"]) == ("COMPLETED", "0:0", "debug")
        assert "gres" not in info.get("TresPerNode", "")  # no GPU asked for on a CPU partition


@slurm
def test_launcher_mistakes_on_this_cluster_are_one_line_before_any_folder(cluster, tmp_path, env):
    cases = {"hydra.launcher.partition=gpu": "hydra.launcher.partition='gpu' is not valid: a partition of this "
                                             "cluster: debug (default)",
             "hydra.launcher.gpus_per_node=1": "hydra.launcher.gpus_per_node=1 is not valid: partition debug has "
                                               "no GPUs: 0 or null",
             "hydra.launcher.mem_gb=100000": "hydra.launcher.mem_gb=100000 is not valid: at most",
             "hydra.launcher.cpus_per_task=512": "hydra.launcher.cpus_per_task=512 is not valid: at most"}
    for bad, message in cases.items():
        res = trainlab(["train", "-m", *SLURM, bad, "seed=0,1", "hydra.sweep.dir=sweep"], tmp_path, env)
        assert res.returncode == 2 and res.stderr.startswith(f"error: {message}"), res.stderr[-2000:]
        assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "sweep").exists()
    # what only sbatch can judge (a node feature nobody has) is still one error line, no traceback
    res = trainlab(["train", "-m", *SLURM, "+hydra.launcher.constraint=nothere", "seed=0,1", "hydra.sweep.dir=sweep"],
                   tmp_path, env)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert "error: hydra/launcher='slurm' is not valid: sbatch refused the jobs: sbatch: error: Batch job " \
           "submission failed: Invalid feature specification" in res.stderr


@slurm
def test_a_requeued_job_resumes_in_its_folder_and_ends_as_if_uninterrupted(cluster, tmp_path, env):
    """Job 0 (slowed) is requeued with `scontrol requeue` mid-training: SLURM sends SIGTERM, the run
    saves last.pt and leaves without a result, SLURM starts it again (SLURM_RESTART_COUNT=1) and it
    resumes in its folder; job 1 trains the same uninterrupted (only trainer.progress differs)."""
    proc = trainlab(["train", "-m", *SLURM, *EXACT, "trainer.progress=off,plain", "hydra.sweep.dir=sweep"],
                    tmp_path, env | {"SLOW_JOB": "0"}, wait=False)
    sweep = tmp_path / "sweep"
    try:
        wait_for(lambda: sweep.is_dir() and any(p.name.startswith("0_") and evaluated_epochs(p) >= 1
                                                for p in sweep.iterdir()), 120, "job 0's first epoch")
        job0 = job_folders(sweep)[0]
        array = next((sweep / ".submitit").glob("*_0")).name
        subprocess.run(["scontrol", "requeue", array], check=True)
        out, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, out[-3000:] + err[-3000:]
    jobs = job_folders(sweep)
    assert [status(j) for j in jobs] == ["completed", "completed"]
    wait_for(lambda: ended(array), 60, f"SLURM to end job {array}")
    info = scontrol(array)
    assert (info["JobState"], info["Restarts"]) == ("COMPLETED", "1")  # SLURM's count: requeued once
    log = (job0 / "train.log").read_text()
    assert log.count("SIGTERM: finishing the current step") == 1
    assert "SLURM is requeueing this job" in log and log.count("interrupted: results in") == 1
    assert "started again by submitit (requeued), SLURM_RESTART_COUNT=1" in log
    resumed = re.search(r"resumed from .* at epoch (\d+), step (\d+)", log)
    assert resumed and 0 < int(resumed.group(2)) < 30, log[-2000:]  # mid-training: 30 steps in all
    a, b = final_state(jobs[1]), final_state(job0)
    for key in ("model", "optimizer", "ema", "schedule", "data"):
        assert_same_tensors(a[key], b[key])
    assert metrics_without_time(job0) == metrics_without_time(jobs[1])


@slurm
def test_a_cancelled_job_is_interrupted_and_resume_sweep_finishes_it(cluster, tmp_path, env):
    proc = trainlab(["train", "-m", *SLURM, "seed=0,1", "trainer.epochs=3", *TINY, "hydra.sweep.dir=sweep"],
                    tmp_path, env | {"SLOW_JOB": "0"}, wait=False)
    sweep = tmp_path / "sweep"
    try:
        wait_for(lambda: sweep.is_dir() and any(p.name.startswith("0_") and evaluated_epochs(p) >= 1
                                                for p in sweep.iterdir()), 120, "job 0's first epoch")
        array = next((sweep / ".submitit").glob("*_0")).name
        subprocess.run(["scancel", array], check=True)
        out, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 143, out[-3000:] + err[-3000:]  # a job stopped by SIGTERM
    assert "Traceback" not in out + err and "1/2 jobs finished" not in out
    jobs = job_folders(sweep)
    assert [status(j) for j in jobs] == ["interrupted", "completed"]
    wait_for(lambda: ended(array), 60, f"SLURM to end job {array}")
    assert scontrol(array)["JobState"] == "CANCELLED"  # SLURM's word matches trainlab's `interrupted`
    assert "interrupted" in (sweep / "table.md").read_text()

    res = trainlab(["resume-sweep", "sweep"], tmp_path, env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert [status(j) for j in job_folders(sweep)] == ["completed", "completed"]
    assert "resumed from" in (jobs[0] / "train.log").read_text()
    assert "2/2 jobs finished" in res.stdout


@slurm
def test_two_gloo_ranks_under_srun_in_one_allocation_write_one_run_folder(cluster, tmp_path, env):
    res = subprocess.run(["salloc", "--ntasks=2", "--cpus-per-task=1", "--partition=debug", "srun",
                          "--kill-on-bad-exit=1", sys.executable, "-m", "trainlab", "train", "trainer.device=cpu",
                          "trainer.epochs=2",
                          *TINY, "trainer.progress=off", "hydra.run.dir=run"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir() and p.name != "__pycache__") == ["run"]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert len(final_state(tmp_path / "run")["ranks"]) == 2  # both ranks' RNG streams in one last.pt
    log = (tmp_path / "run" / "train.log").read_text()
    assert log.count("completed: results in") == 1  # rank 0 alone writes


@slurm
def test_two_workers_share_one_optuna_study_through_a_journal_file(cluster, tmp_path, env):
    """Two SLURM jobs, each an optuna sweep in its own folder on one journal storage and study:
    exactly n_trials in all, each trial run by one worker, and trials pruned against the other's."""
    n_trials = 8
    worker = ["-m", "hydra/sweeper=optuna", f"hydra.sweeper.n_trials={n_trials}", "hydra.sweeper.sampler=random",
              "hydra.sweeper.pruner=successive_halving", "hydra.sweeper.storage=journal:study.journal",
              "hydra.sweeper.study_name=shared", "optimizer.lr=tag(log,interval(1e-4,1.0))", "trainer.epochs=3",
              *TINY, "trainer.progress=off"]
    ids = []
    for w in range(2):
        cmd = " ".join([sys.executable, "-m", "trainlab", "train", *(f"'{a}'" for a in worker),
                        f"hydra.sweeper.seed={1000 * w}", f"hydra.sweep.dir=worker{w}"])
        done = subprocess.run(["sbatch", "--parsable", "--hold", "--partition=debug", "--cpus-per-task=1",
                               "--mem=1G", f"--output=worker{w}.log", f"--wrap={cmd}"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, check=True)
        ids.append(done.stdout.strip())
    subprocess.run(["scontrol", "release", *ids], check=True)  # both start in one scheduling pass
    wait_for(lambda: all(ended(i) for i in ids), 300,
             "both workers")
    for w, job_id in enumerate(ids):
        assert (scontrol(job_id)["JobState"], scontrol(job_id)["ExitCode"]) == ("COMPLETED", "0:0"), \
            (tmp_path / f"worker{w}.log").read_text()[-3000:]

    import optuna

    from trainlab.sweep.shared_study import open_storage

    study = optuna.load_study(study_name="shared", storage=open_storage(f"journal:{tmp_path / 'study.journal'}"))
    trials = study.get_trials()
    assert sorted(t.number for t in trials) == list(range(n_trials))  # none lost, none duplicated
    assert all(t.state.is_finished() for t in trials)
    by_worker = {}
    for w in range(2):
        entries = json.loads((tmp_path / f"worker{w}" / "optuna_trials.json").read_text())
        by_worker[w] = {e["trial_id"] for e in entries.values()}
        for job, entry in entries.items():  # each trial's job folder in the worker that ran it
            folder, = (tmp_path / f"worker{w}").glob(f"{job}_*")
            trial = next(t for t in trials if t._trial_id == entry["trial_id"])
            assert status(folder) == {"COMPLETE": "completed", "PRUNED": "pruned"}[trial.state.name]
    assert by_worker[0] and by_worker[1] and not by_worker[0] & by_worker[1]
    assert by_worker[0] | by_worker[1] == {t._trial_id for t in trials}
    table = trainlab(["table", "worker0", "worker1"], tmp_path, env)  # one table over the workers' folders
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    rows = [line for line in table.stdout.splitlines() if line.startswith("│")]
    assert table.returncode == 0 and len(rows) == n_trials, table.stdout + table.stderr
    assert sum("pruned 1/1" in row for row in rows) == len(pruned)
    assert pruned, [(t.number, t.state.name, t.value) for t in trials]
    owner = {tid: w for w, tids in by_worker.items() for tid in tids}
    # a trial can only be pruned against trials that reached its epoch first; some were the other worker's
    assert any(any(owner[o._trial_id] != owner[t._trial_id] and o.datetime_complete < t.datetime_complete
                   for o in trials if o.state.name == "COMPLETE") for t in pruned)

