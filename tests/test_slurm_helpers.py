"""The parts of trainlab's SLURM support that read the cluster, on canned answers (no cluster needed):
partitions from sinfo, job states from squeue where there is no accounting, a job without a result,
and workers asking a shared Optuna study for exactly n_trials. The real cluster: test_slurm_cluster.py."""
import pytest

from trainlab.errors import ConfigError


def test_partitions_and_their_gpus_are_read_from_sinfo(monkeypatch):
    from trainlab.app import slurm_cluster

    out = "cpu*|2|24105|(null)\ngpu|64|512000|gpu:a100:4(S:0-1)\ngpu|32|256000|gpu:a100:8\n"
    monkeypatch.setattr(slurm_cluster, "_run", lambda args: out)
    slurm_cluster.partitions.cache_clear()
    try:
        assert slurm_cluster.partitions() == (slurm_cluster.Partition("cpu", True, 2, 24105, 0),
                                              slurm_cluster.Partition("gpu", False, 32, 256000, 4))
        assert slurm_cluster.default_gpus(None) is None and slurm_cluster.default_gpus("gpu") == 1
        slurm_cluster.check_partition_resources({"partition": "gpu", "gpus_per_node": 4, "cpus_per_task": 8,
                                                 "tasks_per_node": 4, "mem_gb": 200})
        with pytest.raises(ConfigError, match=r"^hydra.launcher.tasks_per_node=8 is not valid: at most 32 CPUs"):
            slurm_cluster.check_partition_resources({"partition": "gpu", "tasks_per_node": 8, "cpus_per_task": 8})
        with pytest.raises(ConfigError, match=r"^hydra.launcher.gpus_per_node=8 is not valid: partition gpu has 4"):
            slurm_cluster.check_partition_resources({"partition": "gpu", "gpus_per_node": 8})
        with pytest.raises(ConfigError, match=r"^hydra.launcher.partition='debug' is not valid: a partition of "
                                              r"this cluster: cpu \(default\), gpu$"):
            slurm_cluster.check_partition_resources({"partition": "debug"})
    finally:
        slurm_cluster.partitions.cache_clear()


def test_exactly_n_trials_are_asked_by_workers_sharing_a_journal(tmp_path):
    """Two workers' ask loops interleaved on one journal file: the lock makes the count and the ask one
    step, so together they ask exactly n_trials (without it both would take the last free slot)."""
    optuna = pytest.importorskip("optuna")
    from trainlab.sweep.shared_study import ask_trials, open_storage

    url = f"journal:{tmp_path / 'study.journal'}"
    space = {"x": optuna.distributions.FloatDistribution(0, 1)}
    a, b = (optuna.create_study(storage=open_storage(url), study_name="s", load_if_exists=True) for _ in range(2))
    asked = []
    while True:
        got = ask_trials(a, lambda: a.ask(space), 5, 2, url) + ask_trials(b, lambda: b.ask(space), 5, 2, url)
        if not got:
            break
        asked += got
        a.tell(got[0], 0.5)  # one finished, the others still running: both count
    assert len(asked) == 5 and len(b.get_trials()) == 5 and not list(tmp_path.glob("*.lock"))


def test_without_accounting_job_states_come_from_squeue():
    """squeue's lines read as sacct's (arrays and ranges), and a job squeue no longer lists has ended."""
    pytest.importorskip("submitit")
    from hydra_plugins.trainlab_sweeper.trainlab_submitit_launcher import squeue_watcher

    watcher = squeue_watcher()(delay_s=60)
    for job_id in ("7_0", "7_1", "7_2", "7_3", "8_0"):
        watcher.register_job(job_id)
    assert watcher._make_command()[:2] == ["squeue", "--noheader"]
    info = watcher.read_info(b"7_0|COMPLETED|vm\n7_1|CANCELLED|vm\n7_[2-3]|PENDING|\n")
    assert {k: v["State"] for k, v in info.items()} == {"7_0": "COMPLETED", "7_1": "CANCELLED", "7_2": "PENDING",
                                                         "7_3": "PENDING", "8_0": "ENDED"}
    watcher._info_dict.update(info)
    assert [watcher.is_done(j, mode="cache") for j in ("7_0", "7_1", "7_2", "8_0")] == [True, True, False, True]


def test_a_job_without_a_result_is_a_failed_job_not_an_exception(caplog):
    pytest.importorskip("submitit")
    from types import SimpleNamespace

    from hydra.core.utils import JobStatus
    from submitit.core.utils import UncompletedJobError

    from hydra_plugins.trainlab_sweeper.trainlab_submitit_launcher import ResultOrFailure

    def results():
        raise UncompletedJobError("Job 9_1 (task: 0) with path /x has not produced any output (state: CANCELLED)\nmore")

    job = SimpleNamespace(results=results, job_id="9_1", state="CANCELLED", paths=SimpleNamespace(stderr="/x/9_1.err"))
    with caplog.at_level("WARNING"):
        ret, = ResultOrFailure(job, 1).results()
    assert ret.status == JobStatus.FAILED and isinstance(ret._return_value, UncompletedJobError)
    assert "job 1 (SLURM job 9_1, state CANCELLED) ended without a result: Job 9_1 (task: 0) with path /x has " \
           "not produced any output (state: CANCELLED) (its log: /x/9_1.err)" in caplog.text
