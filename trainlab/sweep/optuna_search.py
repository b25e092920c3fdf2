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
Each trial is asked from a sampler seeded for its number (`trial_seed`), so a search stopped or
killed and resumed asks the trials the uninterrupted search would. An `epochs_to`/`steps_to`
objective that a job never reaches counts as one past the job's budget (`objective_value`).
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


def trial_seed(seed: int, number: int) -> int:
    """The sampler's seed for trial `number` of a search seeded `seed`.

    The sampler is made afresh with this seed before each trial is asked, so a trial's values
    depend only on (seed, trial number, the finished trials before it): a search stopped or
    killed and resumed asks exactly the trials the uninterrupted search would. (Optuna keeps a
    sampler's random state in memory only; re-seeding once per session with seed + trials done
    gave a resumed search other draws.) numpy's SeedSequence mixes the pair, so search seed 1's
    trial 0 does not repeat search seed 0's trial 1, as seed + number would.
    """
    import numpy as np

    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


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
    values = [objective_value(Metric(objective), r) for r in records if r.status == "completed"]
    values = [v for v in values if v is not None and math.isfinite(v)]
    return ("complete", sum(values) / len(values)) if values else ("fail", None)


def objective_value(metric, record) -> float | None:
    """A completed job's objective. An `epochs_to`/`steps_to` threshold the job never reached
    counts as one past its budget: trainer.epochs + 1 epochs, or the steps of trainer.epochs
    epochs + 1. It is thus worse than any job that got there within the same budget, and the
    sampler learns that the region is bad (a FAIL trial would teach it nothing)."""
    from trainlab.sweep.derived import NOT_REACHED

    value = metric.value(record)
    if value != NOT_REACHED:
        return value
    last_epoch, last_step = record.last("epoch") or 0.0, record.last("step") or 0.0
    configured = (record.config.get("trainer") or {}).get("epochs")
    epochs = max(float(configured) if isinstance(configured, (int, float)) else 0.0, last_epoch)
    if metric.derived.func == "epochs_to":
        return epochs + 1
    steps_per_epoch = last_step / last_epoch if last_epoch else last_step
    return round(steps_per_epoch * epochs) + 1


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


def study_summary(sweep_dir: Path) -> list[str]:
    """The lines an Optuna sweep's table ends with: the hyperparameter importances by Optuna's own
    (default) evaluator over the completed trials, and the best trial's parameters."""
    entries = list(read_trials(sweep_dir).values())
    if not entries:
        return []
    try:
        import optuna
    except ImportError:
        return ["importances: not available (optuna is not installed: pip install 'trainlab[search]')"]
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=entries[0]["study"], storage=entries[0]["storage"])
    except Exception as err:  # a moved folder, a database that is gone: the table still stands
        return [f"importances: the study could not be opened ({type(err).__name__}: {err})"]
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    if not done:
        return ["importances: no completed trial"]
    lines = []
    # Optuna 5's default evaluator, named so that the line says which one (Optuna 4's default was fANOVA)
    kind = getattr(optuna.importance, "PedAnovaImportanceEvaluator", None) or optuna.importance.FanovaImportanceEvaluator
    name = kind.__name__
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an experimental-feature warning would end up in the table
            found = optuna.importance.get_param_importances(study, evaluator=kind())
        shown = ", ".join(f"{k} {v:.2f}" for k, v in found.items())
        lines.append(f"hyperparameter importances (Optuna's {name}, over {len(done)} completed trials): {shown}")
    except Exception as err:  # too few trials, a parameter that never varied
        lines.append(f"hyperparameter importances: not available ({type(err).__name__}: {err})")
    best = study.best_trial
    params = ", ".join(f"{k}={format_float(v) if isinstance(v, float) else v}" for k, v in best.params.items())
    lines.append(f"best trial: #{best.number}, objective {best.value:.4g}, {params}")
    return lines
