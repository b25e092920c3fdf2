"""hydra/sweeper=optuna: a search that learns from earlier trials, on an Optuna study database.

The search space is written as for the random search (trainlab.sweep.search):
`tag(log,interval(a,b))`, `int(interval(a,b))`, `a,b,c` choices; replicate axes (seed,
dataset.cv.fold) stay a grid inside each trial, whose objective is the mean over them.
The study lives in `optuna.db` in the sweep folder (or any RDB URL), so launchers'
workers share it and a sweep run again on the same folder continues it. The sweep
folder's TRIALS_FILE maps each job number to its trial, so a job (in whatever process)
can report its validation metric at each evaluation and be pruned: status `pruned`.
Optuna is imported only by this module, and only for an optuna sweep.
"""
from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

from hydra.core.override_parser.types import IntervalSweep, Override

from trainlab.errors import ConfigError
from trainlab.sweep.search import _grid_values, _interval, _is_replicate, format_float

TRIALS_FILE = "optuna_trials.json"  # job number -> {storage, study, trial_id, prune}


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
    if name not in samplers:
        raise ConfigError("hydra.sweeper.sampler", name, "one of " + ", ".join(samplers))
    return samplers[name](seed=seed)


def make_pruner(name: str, warmup: int):
    import optuna

    pruners = {"median": lambda: optuna.pruners.MedianPruner(n_warmup_steps=warmup),
               "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
               "none": optuna.pruners.NopPruner}
    if name not in pruners:
        raise ConfigError("hydra.sweeper.pruner", name, "one of " + ", ".join(pruners))
    return pruners[name]()


def default_storage(sweep_dir: Path) -> str:
    return f"sqlite:///{Path(sweep_dir).absolute() / 'optuna.db'}"


def write_trials(sweep_dir: Path, entries: dict[int, dict]) -> None:
    path = Path(sweep_dir) / TRIALS_FILE
    known = json.loads(path.read_text()) if path.is_file() else {}
    known |= {str(k): v for k, v in entries.items()}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(known, indent=1) + "\n")
    tmp.replace(path)


def trial_value(run_dirs: list[Path], objective: str) -> tuple[str, float | None]:
    """A trial's outcome from its jobs' folders: (pruned | complete | fail, mean objective)."""
    from trainlab.sweep.metric import Metric
    from trainlab.sweep.runs import load_job

    records = [load_job(p) for p in run_dirs]
    if any(r.status == "pruned" for r in records):
        return "pruned", None
    values = [Metric(objective).value(r) for r in records if r.status == "completed"]
    values = [v for v in values if v is not None and math.isfinite(v)]
    return ("complete", sum(values) / len(values)) if values else ("fail", None)


class TrialReporter:
    """A sweep job's side of pruning: reports the validation metric to its trial at each
    evaluation and says when the pruner stops it."""

    def __init__(self, entry: dict, column: str):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.load_study(study_name=entry["study"], storage=entry["storage"])
        self.trial = optuna.trial.Trial(study, entry["trial_id"])
        self.column = column

    def prune(self, row: dict) -> bool:
        value = row.get(self.column)
        if value is None or not math.isfinite(value):
            return False
        self.trial.report(float(value), int(row["epoch"]))
        return self.trial.should_prune()


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
