"""trainlab's Optuna sweeper (hydra/sweeper=optuna), on optuna >= 4 (Hydra's own plugin pins optuna < 3).

Each trial asks the study for its values (TPE by default), runs its replicate grid (seeds,
folds) as jobs through the configured launcher, and tells the study the mean objective
over them, or `pruned` when a job was stopped by the pruner (trainlab.sweep.optuna_search).
Job numbers are trial-major (trial t's replicates are jobs t*R ... t*R+R-1), so a sweep run
again on the same folder and study continues where it stopped. With `resume: true`
(`trainlab resume-sweep`) the trials it left RUNNING or FAIL are finished first (their jobs
without a result run again under their old numbers), then new trials up to n_trials.
"""
import logging
import warnings
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.trainlab_sweeper.trainlab_sweeper import batches

log = logging.getLogger(__name__)


class OptunaSweeper(Sweeper):
    def __init__(self, params: dict | None = None, n_trials: int = 20, direction: str | None = None,
                 objective: str = "best.val_acc", sampler: str = "tpe", seed: int = 0, pruner: str = "median",
                 pruner_warmup: int = 1, storage: str | None = None, study_name: str | None = None,
                 parallel_trials: int = 1, resume: bool = False, table: Any = None) -> None:
        super().__init__()
        self.params, self.n_trials, self.direction, self.objective = dict(params or {}), n_trials, direction, objective
        self.sampler, self.seed, self.pruner, self.pruner_warmup = sampler, seed, pruner, pruner_warmup
        self.storage, self.study_name, self.parallel_trials = storage, study_name, max(1, parallel_trials)
        self.resume = resume
        self.hydra_context = self.config = self.launcher = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        import optuna

        from trainlab.sweep.metric import Metric
        from trainlab.sweep.optuna_search import (default_storage, make_pruner, make_sampler, record_outcome,
                                                  searched_ranges, split_axes, trial_overrides, trial_value,
                                                  write_trials)
        from trainlab.sweep.shared_study import ask_trials, normalized, open_storage
        from trainlab.sweep.search import Plan, write_search_file

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        space, replicates = split_axes(parser.parse_overrides([*(f"{k}={v}" for k, v in self.params.items()),
                                                               *arguments]))
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        # search.yaml as a random search writes it: the table sorts best first and reads the ranges
        write_search_file(sweep_dir, Plan(jobs=[], random=True, n_trials=self.n_trials, seed=self.seed,
                                          searched=searched_ranges(space)))
        from trainlab.sweep.job_names import swept_keys, write_swept_keys

        # job folders are named by the searched keys and the replicate keys that vary (seed)
        write_swept_keys(sweep_dir, [*space, *(swept_keys(replicates) if len(replicates) > 1 else [])])
        objective = Metric(self.objective)
        direction = self.direction or ("maximize" if objective.higher_is_better else "minimize")
        storage = normalized(self.storage) if self.storage else default_storage(sweep_dir)
        study = optuna.create_study(storage=open_storage(storage), study_name=self.study_name or sweep_dir.name,
                                    direction=direction,
                                    pruner=make_pruner(self.pruner, self.pruner_warmup), load_if_exists=True)
        with warnings.catch_warnings():  # set_metric_names is marked experimental in optuna 4-5
            warnings.simplefilter("ignore")
            study.set_metric_names([objective.name])  # optuna-dashboard's label, instead of "Objective 0"
        # the metrics.csv column the jobs report for pruning: the objective's, when it has one per evaluation
        name = objective.name.split(".", 1)[-1] if not objective.from_csv else objective.name
        column = name if objective.from_csv or objective.name.startswith(("best.", "final.")) else None
        # with replicates, the lead (first) replicate reports and the others follow its fate
        prune = self.pruner != "none"
        make_sampler(self.sampler, self.seed)  # a bad sampler name is refused before any trial runs
        returns = self._finish_trials(study, space, replicates, sweep_dir) if self.resume else []
        # counted and asked under one lock: workers sharing the study stop at exactly n_trials in all
        while batch := ask_trials(study, lambda: self._ask(study, space), self.n_trials, self.parallel_trials, storage):
            jobs, entries = [], {}
            for trial in batch:
                for r, replicate in enumerate(replicates):
                    entries[trial.number * len(replicates) + r] = {"storage": storage, "study": study.study_name,
                                                                   "trial_id": trial._trial_id, "prune": prune,
                                                                   "pruner": [self.pruner, self.pruner_warmup],
                                                                   "column": column, "lead": r == 0}
                    jobs.append((trial.number * len(replicates) + r,
                                 [*replicate, *trial_overrides(space, trial.params)]))
            write_trials(sweep_dir, entries)
            launched = []
            numbers = [n for n, _ in jobs]  # consecutive unless another worker took numbers in between
            for start, count in batches(numbers, None):
                first = numbers.index(start)
                launched += self.launcher.launch([o for _, o in jobs[first:first + count]], initial_job_idx=start)
            returns += launched
            for i, trial in enumerate(batch):
                dirs = [Path(job_folder(ret)) for ret in launched[i * len(replicates):(i + 1) * len(replicates)]]
                state, value = trial_value(dirs, self.objective)
                record_outcome(study, study.trials[trial.number], state, value)
                log.info(f"trial {trial.number}: {state}{'' if value is None else f' {value:.4f}'} {trial.params}")
        return returns

    def _ask(self, study, space: dict):
        """The next trial, from a sampler seeded for its number (optuna_search.trial_seed): a resumed
        or continued search asks what the uninterrupted one would."""
        from trainlab.sweep.optuna_search import make_sampler, trial_seed

        study.sampler = make_sampler(self.sampler, trial_seed(self.seed, len(study.trials)))
        return study.ask(space)

    def _finish_trials(self, study, space: dict, replicates: list[list[str]], sweep_dir: Path) -> list:
        """resume-sweep: run again the jobs without a result of this folder's RUNNING and FAIL
        trials (under their old numbers; a job continues from its last.pt), then record each
        trial's outcome (trainlab.sweep.optuna_search.record_outcome)."""
        from optuna.trial import TrialState

        from trainlab.errors import ConfigError
        from trainlab.sweep.optuna_search import (KEPT_JOBS, read_trials, record_outcome, trial_overrides,
                                                  trial_value, trials_to_finish, write_trials)
        from trainlab.sweep.resume import job_records, pending_jobs

        ignored = set(self.config.hydra.job.config.override_dirname.exclude_keys)
        returns = []
        for trial, numbers in trials_to_finish(study, sweep_dir):
            if len(numbers) != len(replicates):
                raise ConfigError("hydra.sweep.dir", str(sweep_dir), f"its trial {trial.number} ran "
                                  f"{len(numbers)} replicate jobs but this sweep has {len(replicates)} per trial; "
                                  "resume a sweep with the overrides it was started with")
            jobs = {num: [*replicates[r], *trial_overrides(space, trial.params)] for r, num in enumerate(numbers)}
            todo = pending_jobs(sweep_dir, jobs, ignored, kept=KEPT_JOBS)
            if trial.state == TrialState.FAIL:  # a finished trial takes no more reports: no pruning
                entries = read_trials(sweep_dir)
                write_trials(sweep_dir, {n: entries[str(n)] | {"prune": False} for n in numbers})
            log.info(f"resuming trial {trial.number} ({trial.state.name}): {len(todo)} of {len(numbers)} jobs to run")
            for start, count in batches(todo, None):
                returns += self.launcher.launch([jobs[n] for n in range(start, start + count)], initial_job_idx=start)
            folders = {r.job: r.path for r in job_records(sweep_dir)}
            state, value = trial_value([folders[n] for n in numbers if n in folders], self.objective)
            record_outcome(study, trial, state, value)
            log.info(f"trial {trial.number}: {state}{'' if value is None else f' {value:.4f}'} {trial.params}")
        return returns


def job_folder(ret) -> str:
    """A finished job's run folder: trainlab.app.job.ReleaseJobConfig keeps it when it lets the job's configs go."""
    folder = getattr(ret, "run_dir", None)
    return folder if folder is not None else str(ret.hydra_cfg.hydra.runtime.output_dir)
