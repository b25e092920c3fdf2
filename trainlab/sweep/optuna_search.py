"""hydra/sweeper=optuna: a search that learns from earlier trials, on an Optuna study database.

The search space is written as for the random search (trainlab.sweep.search):
`tag(log,interval(a,b))`, `int(interval(a,b))`, `a,b,c` choices; replicate axes (seed,
dataset.cv.fold) stay a grid inside each trial, whose objective is the mean over them.
The study lives in `optuna.db` in the sweep folder (or any RDB URL), so launchers'
workers share it and a sweep run again on the same folder continues it. The sweep
folder's TRIALS_FILE maps each job number to its trial, so a job (in whatever process)
can report its validation metric at each evaluation and be pruned: status `pruned`.

Pruning a trial with replicates (seeds, folds): its first replicate (the lead) reports its
curve and the pruner judges it against the other trials' first replicates, the same seed or
fold each time, so the comparison is like for like. Once the lead is pruned the trial is: the
other replicates stop at their next evaluation, or right after their step-0 evaluation when
they start later, all with status `pruned`. (A mean over the replicates finished so far would
compare a one-seed curve in one trial with a two-seed mean in another, and Optuna keeps the
first value reported at a step.) DDP jobs are not pruned: only single-process jobs report.

Resuming (`trainlab resume-sweep`): a trial of this folder that the study still holds as
RUNNING (its sweep was stopped) or FAIL (a job raised) has its jobs without a result
(pruned counts as one) run again under their old numbers; a RUNNING trial is then told its
outcome; a FAIL one cannot change state in Optuna, so its outcome enters the study as a new
trial with the same values and user attribute `retry_of` (not counted again in n_trials).
Optuna is imported only by this module, and only for an optuna sweep.
"""
from __future__ import annotations

import itertools
import json
import math
import warnings
from pathlib import Path

from hydra.core.override_parser.types import IntervalSweep, Override

from trainlab.errors import ConfigError
from trainlab.sweep.search import _grid_values, _interval, _is_replicate, format_float

TRIALS_FILE = "optuna_trials.json"  # job number -> {storage, study, trial_id, prune, column, lead}
KEPT_JOBS = ("completed", "diverged", "pruned")  # a resumed trial's jobs that are not run again
SAMPLERS = ("tpe", "random")                       # hydra.sweeper.sampler (make_sampler)
PRUNERS = ("median", "successive_halving", "none")  # hydra.sweeper.pruner (make_pruner)


def split_axes(overrides: list[Override]) -> tuple[dict, list[list[str]]]:
    """(key -> Optuna distribution of each searched axis, the replicate grid with the fixed overrides)."""
    import optuna.distributions as d

    axes: dict[str, Override] = {}
    for override in overrides:  # a later value of the same key wins
        axes[override.get_key_element()] = override
    space, grid = {}, []
    for key, override in axes.items():
        if not override.is_sweep_override() or _is_replicate(key):
            grid.append(_grid_values(key, override))
        elif isinstance(override.value(), IntervalSweep):
            low, high, log, integer = _interval(key, override)
            space[key] = d.IntDistribution(low, high, log=log) if integer else d.FloatDistribution(low, high, log=log)
        else:
            space[key] = d.CategoricalDistribution(list(override.sweep_string_iterator()))
    if not space:
        raise ConfigError("hydra/sweeper", "optuna", "at least one searched axis, e.g. "
                          "optimizer.lr='tag(log,interval(1e-4,1e-1))' or activation=relu,tanh")
    return space, [list(job) for job in itertools.product(*grid)]


def searched_ranges(space: dict) -> dict[str, tuple[float, float, bool]]:
    """(low, high, log) of each numeric axis, keyed as the table keys them."""
    from trainlab.sweep.runs import parse_override

    return {parse_override(f"{k}=")[0]: (float(d.low), float(d.high), bool(d.log))
            for k, d in space.items() if hasattr(d, "low")}


def trial_overrides(space: dict, params: dict) -> list[str]:
    out = []
    for key, value in params.items():
        text = format_float(value) if isinstance(value, float) and key in space and \
            type(space[key]).__name__ == "FloatDistribution" else str(value)
        out.append(f"{key}={text}")
    return out


def make_sampler(name: str, seed: int):
    import optuna

    samplers = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler}
    if name not in SAMPLERS:
        raise ConfigError("hydra.sweeper.sampler", name, "one of " + ", ".join(SAMPLERS))
    return samplers[name](seed=seed)


def make_pruner(name: str, warmup: int):
    import optuna

    pruners = {"median": lambda: optuna.pruners.MedianPruner(n_warmup_steps=warmup),
               "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
               "none": optuna.pruners.NopPruner}
    if name not in PRUNERS:
        raise ConfigError("hydra.sweeper.pruner", name, "one of " + ", ".join(PRUNERS))
    return pruners[name]()


def default_storage(sweep_dir: Path) -> str:
    return f"sqlite:///{Path(sweep_dir).absolute() / 'optuna.db'}"


def read_trials(sweep_dir: Path) -> dict[str, dict]:
    path = Path(sweep_dir) / TRIALS_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def write_trials(sweep_dir: Path, entries: dict[int, dict]) -> None:
    path = Path(sweep_dir) / TRIALS_FILE
    known = read_trials(sweep_dir)
    known |= {str(k): v for k, v in entries.items()}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(known, indent=1) + "\n")
    tmp.replace(path)


def trial_value(run_dirs: list[Path], objective: str) -> tuple[str, float | None]:
    """A trial's outcome from its jobs' folders: (pruned | complete | fail | open, mean objective).
    `open`: a job was interrupted or left no summary; the trial stays RUNNING for resume-sweep."""
    from trainlab.sweep.metric import Metric
    from trainlab.sweep.runs import load_job

    records = [load_job(p) for p in run_dirs]
    if any(r.status == "pruned" for r in records):
        return "pruned", None
    if any(r.status in ("interrupted", "missing") for r in records):
        return "open", None
    values = [Metric(objective).value(r) for r in records if r.status == "completed"]
    values = [v for v in values if v is not None and math.isfinite(v)]
    return ("complete", sum(values) / len(values)) if values else ("fail", None)


def trials_to_finish(study, sweep_dir: Path) -> list[tuple[object, list[int]]]:
    """(trial, its job numbers) of each trial of this sweep folder that resume-sweep finishes:
    RUNNING (its sweep stopped before telling the outcome) or FAIL and not retried yet."""
    from optuna.trial import TrialState

    numbers: dict[int, list[int]] = {}
    for job, entry in read_trials(sweep_dir).items():
        numbers.setdefault(entry["trial_id"], []).append(int(job))
    retried = {t.user_attrs.get("retry_of") for t in study.trials}
    return [(t, sorted(numbers[t._trial_id])) for t in study.trials if t._trial_id in numbers and
            (t.state == TrialState.RUNNING or (t.state == TrialState.FAIL and t.number not in retried))]


def trials_counted(study, sweep_dir: Path) -> int:
    """Trials that use up n_trials: finished ones (a retry replaces its failed trial) and this
    folder's RUNNING ones, which resume-sweep finishes rather than replaces."""
    from optuna.trial import TrialState

    mine = {e["trial_id"] for e in read_trials(sweep_dir).values()}
    return sum((t.state.is_finished() and "retry_of" not in t.user_attrs) or
               (t.state == TrialState.RUNNING and t._trial_id in mine) for t in study.trials)


def record_outcome(study, trial, state: str, value: float | None) -> None:
    """Tell the study how `trial` ended (`open`: not yet; it stays RUNNING)."""
    import optuna
    from optuna.trial import TrialState

    states = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "fail": TrialState.FAIL}
    if state == "open":
        return
    if trial.state == TrialState.RUNNING:
        study.tell(trial.number, value if state == "complete" else None,
                   state=None if state == "complete" else states[state])
    elif state != "fail":  # a retried FAIL trial: Optuna's finished trials are immutable
        study.add_trial(optuna.trial.create_trial(
            params=trial.params, distributions=trial.distributions, value=value, state=states[state],
            user_attrs={"retry_of": trial.number}))


class TrialReporter:
    """A sweep job's side of pruning. The trial's lead replicate reports the validation metric at
    each evaluation and says when the pruner stops it (and marks the trial pruned); another
    replicate stops once the lead was pruned (see the module's docstring)."""

    def __init__(self, entry: dict, column: str):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.storage = optuna.storages.get_storage(entry["storage"])
        study = optuna.load_study(study_name=entry["study"], storage=self.storage)
        self.trial_id, self.lead = entry["trial_id"], entry.get("lead", True)
        self.trial = optuna.trial.Trial(study, self.trial_id)
        self.column = column

    def lead_pruned(self) -> bool:
        return "pruned_at_epoch" in self.storage.get_trial_user_attrs(self.trial_id)

    def prune(self, row: dict) -> bool:
        if not self.lead:
            return self.lead_pruned()
        value = row.get(self.column)
        if value is None or not math.isfinite(value):
            return False
        with warnings.catch_warnings():  # a resumed job reports its earlier epochs again: Optuna ignores them
            warnings.simplefilter("ignore")
            self.trial.report(float(value), int(row["epoch"]))
        if not self.trial.should_prune():
            return False
        self.trial.set_user_attr("pruned_at_epoch", int(row["epoch"]))
        return True


def trial_reporter(monitor: str) -> TrialReporter | None:
    """The reporter of this sweep job when an optuna sweep prunes it; None otherwise (no import)."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
            return None
        hc = HydraConfig.get()
        path, job = Path(hc.sweep.dir) / TRIALS_FILE, str(hc.job.num)
    except Exception:
        return None
    if not path.is_file():
        return None
    entry = json.loads(path.read_text()).get(job)
    if not entry or not entry.get("prune"):
        return None
    return TrialReporter(entry, entry.get("column") or monitor)
