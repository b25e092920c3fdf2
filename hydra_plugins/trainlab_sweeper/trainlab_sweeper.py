"""trainlab's Hydra sweeper: Hydra's grid sweep, plus seeded random search and resume.

Hydra instantiates sweepers only from the `hydra_plugins` package, hence this
module; the job list comes from trainlab.sweep.search.plan_sweep, which the
CLI also uses to check every job before Hydra starts. Differences from
Hydra's basic sweeper:

- interval() ranges or `n_trials` make it a random search (see search.py);
- a failed job never stops the sweep (a failure is a result: the CLI reports
  it and sets the exit code after the table is written);
- with `resume: true` jobs that already have a result are not launched
  again, and the rest keep their job numbers (see trainlab.sweep.resume).
"""
import logging
import os
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


class TrainlabSweeper(Sweeper):
    def __init__(self, max_batch_size: int | None = None, params: dict | None = None,
                 n_trials: int | None = None, seed: int = 0, resume: bool = False, table: Any = None) -> None:
        # `table` only configures the report the CLI writes from multirun.yaml (trainlab.sweep.cli)
        super().__init__()
        self.max_batch_size, self.params = max_batch_size, dict(params or {})
        self.n_trials, self.seed, self.resume = n_trials, seed, resume
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.launcher = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        from trainlab.sweep.replicas import ReplicaComposer

        # the launcher composes each job through the context's loader: seed replicates once (trainlab.sweep.replicas)
        hydra_context = HydraContext(config_loader=ReplicaComposer(hydra_context.config_loader),
                                     callbacks=hydra_context.callbacks)
        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        from trainlab.sweep.job_names import swept_keys, write_swept_keys
        from trainlab.sweep.resume import pending_jobs
        from trainlab.sweep.search import plan_sweep, write_search_file

        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        params = [f"{k}={v}" for k, v in self.params.items()]
        plan = plan_sweep(parser.parse_overrides([*params, *arguments]), self.n_trials, self.seed)

        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        if plan.random:
            write_search_file(sweep_dir, plan)
        write_swept_keys(sweep_dir, swept_keys(plan.jobs))  # the job folders' names show these
        todo = list(range(len(plan.jobs)))
        if self.resume:
            ignored = set(self.config.hydra.job.config.override_dirname.exclude_keys)
            todo = pending_jobs(sweep_dir, plan.jobs, ignored)
            log.info(f"resuming {sweep_dir}: {len(plan.jobs) - len(todo)} of {len(plan.jobs)} jobs already "
                     f"have a result, {len(todo)} to run")
        # Jobs are checked by the CLI before Hydra starts; no second composition here.
        returns: list[JobReturn] = []
        for start, count in batches(todo, self.max_batch_size):
            returns += self.launcher.launch(plan.jobs[start:start + count], initial_job_idx=start)
        if os.environ.get("HYDRA_FULL_ERROR") == "1" or os.environ.get("TRAINLAB_VERBOSE") == "1":
            for ret in returns:  # the sweep has finished; now show the first escaped exception in full
                if ret.status == JobStatus.FAILED:
                    ret.return_value  # re-raises it
        return returns


def batches(numbers: list[int], max_size: int | None) -> list[tuple[int, int]]:
    """(first job number, count) of each launch: runs of consecutive numbers, at most
    max_size long. Launchers number the jobs of one launch consecutively, so a
    resumed sweep's gaps (kept jobs) split it into several launches."""
    out: list[tuple[int, int]] = []
    for num in numbers:
        if out and out[-1][0] + out[-1][1] == num and (not max_size or out[-1][1] < max_size):
            out[-1] = (out[-1][0], out[-1][1] + 1)
        else:
            out.append((num, 1))
    return out

