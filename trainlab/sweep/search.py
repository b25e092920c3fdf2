"""Which jobs a sweep runs: a grid of every combination, or a seeded random search.

Both the CLI (to check every job before Hydra starts, and to match a resumed
sweep against its folder) and trainlab's Hydra sweeper call `plan_sweep`, so
the two always agree on the job list and its numbering.

A sweep is a random search when any axis is a range to sample from, or when
`hydra.sweeper.n_trials` is set:

    optimizer.lr=tag(log,interval(1e-4,1e-1))   log-uniform float
    regularizer.dropout.p=interval(0,0.7)        uniform float
    arch.width=int(interval(32,512))             uniform integer (both ends included)
    arch.width=tag(log,int(interval(32,512)))    log-uniform integer
    arch.depth=range(1,6)  activation=relu,tanh  a uniform pick among the listed values

Replicate axes (seed, dataset.cv.fold) stay a grid: every sampled trial runs
once per seed, so the table can still report mean ± std per trial. Jobs are
numbered trial-major; trial t draws its values right after trial t-1 from one
numpy Generator seeded with `hydra.sweeper.seed`, so the same seed gives the
same jobs, and raising n_trials later only appends jobs.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from hydra.core.override_parser.types import IntervalSweep, Override, ValueType

from trainlab.errors import ConfigError
from trainlab.sweep.runs import REPLICATE_KEYS, parse_override

SEARCH_FILE = "search.yaml"  # a random search's settings and ranges, in its sweep folder


@dataclass
class Plan:
    jobs: list[list[str]]  # each job's overrides, in job-number order
    random: bool = False
    n_trials: int | None = None
    seed: int | None = None
    # sampled numeric ranges, override key -> (low, high, log): the table's edge warnings use them
    searched: dict[str, tuple[float, float, bool]] = field(default_factory=dict)


def plan_sweep(overrides: list[Override], n_trials: int | None = None, seed: int = 0) -> Plan:
    """The jobs of a sweep, from the parsed `hydra.sweeper.params` followed by the command-line overrides."""
    axes: dict[str, Override] = {}
    for override in overrides:  # a later value of the same key wins, as in Hydra's basic sweeper
        axes[override.get_key_element()] = override
    if n_trials is None and not any(_is_interval(o) for o in axes.values()):
        return Plan(jobs=[list(job) for job in itertools.product(*(_grid_values(k, o) for k, o in axes.items()))])
    return _random_plan(axes, n_trials, seed)


def _is_interval(override: Override) -> bool:
    return override.is_sweep_override() and isinstance(override.value(), IntervalSweep)


def _is_replicate(key: str) -> bool:
    return parse_override(f"{key}=")[0] in REPLICATE_KEYS


def _grid_values(key: str, override: Override) -> list[str]:
    if not override.is_sweep_override():
        return [f"{key}={override.get_value_element_as_str()}"]
    if _is_interval(override):
        raise ConfigError(key, override.input_line.partition("=")[2],
                          "a list of values: a replicate key (seed, fold) cannot be sampled from an interval")
    return [f"{key}={value}" for value in override.sweep_string_iterator()]


def _random_plan(axes: dict[str, Override], n_trials: int | None, seed: int) -> Plan:
    import numpy as np  # only random searches need it; keeps Hydra's plugin scan light

    if n_trials is None or isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        ranges = ", ".join(k for k, o in axes.items() if _is_interval(o)) or "the swept keys"
        raise ConfigError("hydra.sweeper.n_trials", n_trials,
                          f"a positive number of random-search trials (sampling {ranges})")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError("hydra.sweeper.seed", seed, "a non-negative integer: the same seed samples the same trials")

    sampled = {k: o for k, o in axes.items() if o.is_sweep_override() and not _is_replicate(k)}
    searched = {parse_override(f"{k}=")[0]: r for k, o in sampled.items() if (r := _numeric_range(k, o))}
    samplers = {k: _sampler(k, o) for k, o in sampled.items()}
    rng = np.random.default_rng(seed)
    jobs = []
    for _ in range(n_trials):
        trial = {k: draw(rng) for k, draw in samplers.items()}
        axis_values = [[f"{k}={trial[k]}"] if k in trial else _grid_values(k, o) for k, o in axes.items()]
        jobs += [list(job) for job in itertools.product(*axis_values)]
    return Plan(jobs=jobs, random=True, n_trials=n_trials, seed=seed, searched=searched)


def _sampler(key: str, override: Override):
    """A function rng -> the override value of one draw, as a string."""
    value = override.value()
    if not isinstance(value, IntervalSweep):
        choices = list(override.sweep_string_iterator())
        return lambda rng: choices[int(rng.integers(len(choices)))]
    low, high, log, integer = _interval(key, override)
    if integer:
        if log:  # log-uniform over [low - 0.5, high + 0.5], rounded: every integer gets its share of the log axis
            return lambda rng: str(min(high, max(low, round(math.exp(rng.uniform(math.log(low - 0.5),
                                                                                  math.log(high + 0.5)))))))
        return lambda rng: str(int(rng.integers(low, high + 1)))
    if log:
        return lambda rng: format_float(math.exp(rng.uniform(math.log(low), math.log(high))))
    return lambda rng: format_float(rng.uniform(low, high))


def _interval(key: str, override: Override) -> tuple[float, float, bool, bool]:
    value: IntervalSweep = override.value()
    text = override.input_line.partition("=")[2] if override.input_line else str(value)
    unknown = set(value.tags) - {"log"}
    if unknown:
        raise ConfigError(key, text, f"tag(log, interval(...)) for a log scale; unknown tags {sorted(unknown)}")
    low, high, log = value.start, value.end, "log" in value.tags
    if not low < high:
        raise ConfigError(key, text, "interval(low, high) with low < high")
    if log and low <= 0:
        raise ConfigError(key, text, "a log-scale interval with low > 0")
    return low, high, log, isinstance(low, int) and isinstance(high, int)


def _numeric_range(key: str, override: Override) -> tuple[float, float, bool] | None:
    """(low, high, log) of a sampled numeric axis; None for categorical choices."""
    if _is_interval(override):
        low, high, log, _ = _interval(key, override)
        return float(low), float(high), log
    if override.value_type == ValueType.RANGE_SWEEP:
        values = [float(v) for v in override.sweep_string_iterator()]
        return (min(values), max(values), False) if len(values) > 1 else None
    return None


def format_float(value: float) -> str:
    """4 significant digits: readable in folder names and tables, and far finer than any
    learning-rate or dropout difference that matters. Always float-looking, so that
    a sampled 1.0 is not read back by Hydra as the integer 1."""
    text = f"{value:.4g}"
    return text if any(c in text for c in ".einf") else text + ".0"


def write_search_file(sweep_dir: Path, plan: Plan) -> None:
    ranges = {k: {"low": low, "high": high, "log": log} for k, (low, high, log) in plan.searched.items()}
    text = ("# trainlab's sweeper: the random search of this folder. `trainlab table` sorts its rows best first\n"
            "# and warns when the best job's value sits at the edge of one of these ranges.\n")
    text += yaml.safe_dump({"n_trials": plan.n_trials, "seed": plan.seed, "ranges": ranges}, sort_keys=False)
    (Path(sweep_dir) / SEARCH_FILE).write_text(text)


def read_search_file(sweep_dir: Path) -> dict[str, tuple[float, float, bool]] | None:
    """The searched ranges recorded in a sweep folder; None when it was not a random search
    (or the file is unreadable: the table then infers ranges from the values seen)."""
    try:
        ranges = yaml.safe_load((Path(sweep_dir) / SEARCH_FILE).read_text())["ranges"]
        return {str(k): (float(r["low"]), float(r["high"]), bool(r["log"])) for k, r in ranges.items()}
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError):
        return None
