"""trainlab's Optuna sweeper (hydra/sweeper=optuna), on optuna >= 4 (Hydra's own plugin pins optuna < 3).

Each trial asks the study for its values (TPE by default), runs its replicate grid (seeds,
folds) as jobs through the configured launcher, and tells the study the mean objective
over them, or `pruned` when a job was stopped by the pruner (trainlab.sweep.optuna_search).
Job numbers are trial-major (trial t's replicates are jobs t*R ... t*R+R-1), so a sweep run
again on the same folder and study continues where it stopped.
"""
import logging
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
                 parallel_trials: int = 1, table: Any = None) -> None:
        super().__init__()
        self.params, self.n_trials, self.direction, self.objective = dict(params or {}), n_trials, direction, objective
        self.sampler, self.seed, self.pruner, self.pruner_warmup = sampler, seed, pruner, pruner_warmup
        self.storage, self.study_name, self.parallel_trials = storage, study_name, max(1, parallel_trials)
        self.hydra_context = self.config = self.launcher = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        import optuna

        from trainlab.sweep.metric import Metric
        from trainlab.sweep.optuna_search import (default_storage, make_pruner, make_sampler, split_axes,
                                                  searched_ranges, trial_overrides, trial_value, write_trials)
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
        objective = Metric(self.objective)
        direction = self.direction or ("maximize" if objective.higher_is_better else "minimize")
        storage = self.storage or default_storage(sweep_dir)
        study = optuna.create_study(storage=storage, study_name=self.study_name or sweep_dir.name,
                                    direction=direction,
                                    pruner=make_pruner(self.pruner, self.pruner_warmup), load_if_exists=True)
        # the metrics.csv column the jobs report for pruning: the objective's, when it has one per evaluation
        name = objective.name.split(".", 1)[-1] if not objective.from_csv else objective.name
        column = name if objective.from_csv or objective.name.startswith(("best.", "final.")) else None
        # one job per trial can be pruned; replicates of one trial would report the same steps twice
        prune = len(replicates) == 1 and self.pruner != "none"
        # a continued study: a fresh seed, or the sampler would draw its first trials' values again
        study.sampler = make_sampler(self.sampler, self.seed + len(study.trials))
        done = sum(t.state.is_finished() for t in study.trials)
        returns = []
        while done < self.n_trials:
            batch = [study.ask(space) for _ in range(min(self.parallel_trials, self.n_trials - done))]
            jobs, entries = [], {}
            for trial in batch:
                for r, replicate in enumerate(replicates):
                    entries[trial.number * len(replicates) + r] = {"storage": storage, "study": study.study_name,
                                                                   "trial_id": trial._trial_id, "prune": prune,
                                                                   "column": column}
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
                if state == "complete":
                    study.tell(trial, value)
                else:
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED if state == "pruned"
                               else optuna.trial.TrialState.FAIL)
                log.info(f"trial {trial.number}: {state}{'' if value is None else f' {value:.4f}'} {trial.params}")
            done += len(batch)
        return returns


def job_folder(ret) -> str:
    """A finished job's run folder: trainlab.job.ReleaseJobConfig keeps it when it lets the job's configs go."""
    folder = getattr(ret, "run_dir", None)
    return folder if folder is not None else str(ret.hydra_cfg.hydra.runtime.output_dir)
