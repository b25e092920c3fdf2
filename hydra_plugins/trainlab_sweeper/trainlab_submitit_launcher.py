"""hydra/launcher=slurm and slurm_ddp: Hydra's submitit SlurmLauncher, with what a real cluster showed
it lacks (issue 31, first runs on a one-node SLURM cluster):

- `gpus_per_node: null` asks for one GPU per job only where the partition's nodes have GPUs
  (sinfo's GRES column): a fixed `--gpus-per-node=1` is an sbatch error on a CPU partition.
- On a cluster without accounting storage sacct fails on every poll (submitit logged a warning
  each time and never learnt that a job without a result had ended). There, job states are read
  from squeue, which knows a job until MinJobAge after it ends; a job gone from it has ended.
- sbatch refusing the array (a constraint, account or QOS the cluster does not know) is one line,
  not a traceback.
- A job that ends without a result (cancelled before Python ran, killed for memory, node failure)
  no longer raises out of the whole sweep: it becomes a failed job with a one-line warning, the
  other jobs' results are kept, and the CLI reports the sweep from its folder as usual.
"""
import getpass
import logging
import sys
from functools import lru_cache
from typing import Sequence

from hydra.core.utils import JobReturn, JobStatus
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as SubmititSlurmLauncher

log = logging.getLogger(__name__)


class SlurmLauncher(SubmititSlurmLauncher):
    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from unittest import mock

        import submitit
        from submitit.slurm.slurm import SlurmJob

        from trainlab.app.slurm_cluster import default_gpus, keeps_accounting

        if self.params.get("gpus_per_node") is None:
            self.params["gpus_per_node"] = default_gpus(self.params.get("partition"))
        if not keeps_accounting() and not isinstance(SlurmJob.watcher, squeue_watcher()):
            SlurmJob.watcher = squeue_watcher()(delay_s=60)  # submitit's jobs share this class-level watcher
        submit = submitit.AutoExecutor.map_array

        def map_array(executor, fn, *iterables):
            try:
                jobs = submit(executor, fn, *iterables)
            except submitit.core.utils.FailedJobError as err:  # sbatch said no: its own words, in one line
                from trainlab.errors import ConfigError

                said = next((line for line in str(err).splitlines() if "error" in line.lower()), str(err).strip())
                print(f"error: {ConfigError('hydra/launcher', 'slurm', f'sbatch refused the jobs: {said}')}",
                      file=sys.stderr)
                raise SystemExit(2) from None  # past Hydra's handler, which would print a traceback
            return [ResultOrFailure(job, num) for job, num in zip(jobs, iterables[2])]

        # Hydra's launch() collects `job.results()` of the array in one list: the jobs are handed back
        # wrapped, so one job without a result does not take the others' down with it
        with mock.patch.object(submitit.AutoExecutor, "map_array", map_array):
            return super().launch(job_overrides, initial_job_idx)


class ResultOrFailure:
    """A submitted job whose results() turns "no result" into a failed JobReturn (one warning line)."""

    def __init__(self, job, job_num: int):
        self.job, self.job_num = job, job_num

    def results(self) -> list:
        try:
            return self.job.results()
        except Exception as err:  # submitit's UncompletedJobError / FailedJobError
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            log.warning(f"job {self.job_num} (SLURM job {self.job.job_id}, state {self.job.state}) ended without "
                        f"a result: {first} (its log: {self.job.paths.stderr})")
            ret = JobReturn()
            ret.status, ret.return_value = JobStatus.FAILED, err
            return [ret]


@lru_cache(maxsize=1)
def squeue_watcher() -> type:
    """The watcher class (built on first use: submitit is imported only when a SLURM sweep launches)."""
    from submitit.slurm.slurm import SlurmInfoWatcher

    class Watcher(SlurmInfoWatcher):
        """Job states from squeue, for a cluster without accounting storage (sacct fails there)."""

        def _make_command(self):
            if not self._registered - self._finished:
                return None
            return ["squeue", "--noheader", "--all", "--states=all", f"--user={getpass.getuser()}",
                    "--format=%i|%T|%N"]

        def read_info(self, string) -> dict:
            text = string.decode() if isinstance(string, bytes) else string
            # the table sacct would print, so submitit's own parser reads the job ids (arrays: 12_3, 12_[4-7])
            info = super().read_info("JobID|State|NodeList\n" + text)
            for job_id in self._registered - self._finished - set(info):
                # sbatch returned only once slurmctld held the job: gone from squeue = ended, MinJobAge ago
                info[job_id] = {"JobID": job_id, "State": "ENDED", "NodeList": ""}
            return info

    return Watcher

