"""hydra/launcher=vectorized: a sweep's seed replicates trained as one stacked model, in this process.

Hydra instantiates launchers from the `hydra_plugins` package, hence this module. The jobs of a
launch are grouped (trainlab.app.vectorize_groups.plan_groups: same overrides but the seed, at most
trainer.replicas_per_group each). Every job of a group is set up as Hydra sets up any job
(run_job: its folder, .hydra/, train.log, the folder claimed and locked, its run built with its
own seed), then the group trains together (trainlab.engine.training.train_group) and each
replicate finishes in its own folder. What the sweep then reads (summary.json, the outcomes, the
exit code) is what the basic launcher's jobs leave.
"""
import logging
from pathlib import Path
from typing import Sequence

from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

log = logging.getLogger(__name__)


class VectorizedLauncher(Launcher):
    def __init__(self) -> None:
        super().__init__()
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from trainlab.app.vectorize_groups import plan_groups

        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        configs = {}
        for idx, overrides in enumerate(job_overrides, initial_job_idx):
            cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            with open_dict(cfg):
                cfg.hydra.job.id = cfg.hydra.job.num = idx
            configs[idx] = cfg
        jobs = [(idx, list(o)) for idx, o in enumerate(job_overrides, initial_job_idx)]
        groups = plan_groups(jobs, lambda job: int(configs[job[0]].trainer.replicas_per_group))
        log.info(f"Launching {len(jobs)} jobs as {len(groups)} vectorized group(s) in this process")
        returns: dict[int, JobReturn] = {}
        for group in groups:
            for idx, overrides in group:
                log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            returns |= self._group([(idx, configs.pop(idx)) for idx, _ in group])
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return [returns[idx] for idx, _ in jobs]

    def _group(self, group: list[tuple[int, DictConfig]]) -> dict[int, JobReturn]:
        """Set every job of the group up (Hydra's run_job), train the ones that came up together."""
        task = self.task_function
        prepared: dict[int, tuple[JobReturn, _Replicate | None, dict]] = {}
        for idx, cfg in group:
            ret = run_job(hydra_context=self.hydra_context, task_function=_SetUp(task), config=cfg,
                          job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
            outcome = task.outcomes[-1] if getattr(task, "outcomes", None) else {}
            rep = ret._return_value if ret.status == JobStatus.COMPLETED else None
            prepared[idx] = (ret, rep, outcome)
            if rep is None and ret.status == JobStatus.COMPLETED:
                ret.return_value = None  # a failure is a result, in the outcome
        _train([p[1] for p in prepared.values() if p[1] is not None])
        for ret, rep, outcome in prepared.values():
            if rep is None:
                continue
            summary = rep.run.summary
            if summary is not None and summary.get("status") not in (None, "failed"):
                outcome["status"] = summary["status"]
                ret.return_value = (summary.get("best") or {}).get("val_acc")
            else:
                outcome.update(error=rep.error, kind="exception")
                ret.return_value = None
        return {idx: prepared[idx][0] for idx, _ in group}


class _Replicate:
    """A job of the group, set up: its run, its folder's lock (held until the group ends), its error."""

    def __init__(self, run, lock):
        self.run, self.lock, self.error = run, lock, None


class _SetUp:
    """The task Hydra runs for each job of a group: the job's TrainJob start (folder claim, threads,
    choices), then its Run set up; the _Replicate is the job's return value until the group trains."""

    def __init__(self, job):
        self.job = job

    def __call__(self, cfg: DictConfig):
        return self.job(cfg, work=self._set_up)

    def _set_up(self, cfg: DictConfig, hc, run_dir: Path, multirun: bool):
        from trainlab.app.hooks import run_hooks
        from trainlab.config import validate
        from trainlab.engine.training import set_up_replicate

        decision, lock = self.job.start(cfg, hc, run_dir, multirun)
        state, decision.resume_state = decision.resume_state, None
        try:
            run = set_up_replicate(cfg, validate(cfg), run_dir, list(hc.overrides.task), state, self.job.drawer(cfg, True),
                                   run_hooks(cfg, main=True, single_process=True), run_dir / f"{hc.job.name}.log")
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        return _Replicate(run, lock)


def _train(reps: list[_Replicate]) -> None:
    """Train the set-up replicates: those at the same step together (after a kill, a group's
    checkpoints are all of one step: trainlab.engine.group_commit)."""
    from trainlab.app.job import verbose
    from trainlab.engine.training import train_group

    by_step: dict[tuple, list[_Replicate]] = {}
    for rep in reps:
        by_step.setdefault((rep.run.counters.step, rep.run.counters.batch_in_epoch), []).append(rep)
    try:
        for same in by_step.values():
            try:
                train_group([rep.run for rep in same])
            except BaseException as err:  # the group's failure is each unfinished replicate's
                for rep in same:
                    if rep.run.summary is None or rep.run.summary.get("status") == "failed":
                        log_file = rep.run.log_file
                        rep.error = f"{type(err).__name__}: {err} (traceback in {log_file})"
                if not isinstance(err, Exception) or verbose():
                    raise
                log.error(f"failed: {type(err).__name__}: {err}")
    finally:
        for rep in reps:
            if rep.lock is not None:
                rep.lock.release()
