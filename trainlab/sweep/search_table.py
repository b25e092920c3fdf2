"""What a table of a search (random or Optuna: rows are trials) adds: the edge warning for a badly
placed range, the searched parameters with their scales, and the best trials for the curves figure."""
from __future__ import annotations

import math

from trainlab.sweep.metric import Metric
from trainlab.sweep.runs import RunRecord

EDGE = 0.1  # outer fraction of a search range that flags a badly placed range


def _as_float(text) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def infer_ranges(records: list[RunRecord]) -> dict[str, tuple[float, float, bool]]:
    """Search ranges guessed from the values seen, for numeric override keys
    with more than 5 distinct values (a grid of a few points is not a search).

    The scale is logarithmic when all values are positive and span at least
    two decades, as learning rates and weight decays do.
    """
    ranges = {}
    keys = {k for r in records for k in r.factors}
    for key in sorted(keys):
        values = [_as_float(r.lookup(key)) for r in records]
        if None in values or len(set(values)) <= 5:
            continue
        low, high = min(values), max(values)
        ranges[key] = (low, high, low > 0 and high / low >= 100)
    return ranges


def edge_warnings(
    records: list[RunRecord],
    searched: dict[str, tuple[float, float, bool]] | None = None,
    metric: str = "best.val_acc",
) -> list[str]:
    """Warn when the best job's value of a searched parameter lies in the outer
    10% of its range (measured on the log scale for log ranges): the optimum
    is probably outside the range that was searched.

    `searched` maps an override key to (low, high, log); when None the ranges
    are inferred from the values seen (see `infer_ranges`).
    """
    m = Metric(metric)
    scored = [(m.value(r), r) for r in records if r.status == "completed"]
    # numbers only: epochs_to/steps_to give NOT_REACHED (a string) for a job that never got there
    scored = [(v, r) for v, r in scored if isinstance(v, (int, float)) and not math.isnan(v)]
    if not scored:
        return []
    pick = max if m.higher_is_better else min
    score, best = pick(scored, key=lambda pair: pair[0])
    ranges = infer_ranges(records) if searched is None else searched

    warnings = []
    for key, (low, high, log) in ranges.items():
        value = _as_float(best.lookup(key))
        if value is None or high <= low:
            continue
        if log and low > 0 and value > 0:
            position = (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
        else:
            position = (value - low) / (high - low)
        if EDGE <= position <= 1 - EDGE:
            continue
        side = "lower" if position < EDGE else "upper"
        scale = " (log scale)" if log else ""
        warnings.append(
            f"{key}: the best job ({best.name}, {m.label} {m.format(score)}) has {key}={value:g}, "
            f"in the {side} {EDGE:.0%} of the searched range [{low:g}, {high:g}]{scale}: "
            f"the search range is probably wrong; extend it beyond its {side} end"
        )
    return warnings


BEST_CURVES = 5  # a search's curves.png shows this many trials: one line per trial is a tangle


def best_trials(table, count: int = BEST_CURVES):
    """The table (a `trainlab.sweep.aggregate.Table`) cut to its best `count` rows on its first
    column, best first; rows without a value are dropped."""
    import dataclasses

    metric = table.metrics[0]
    scored = [r for r in table.rows if r.cells[metric.spec].mean is not None
              and math.isfinite(r.cells[metric.spec].mean)]
    scored.sort(key=lambda r: r.cells[metric.spec].mean, reverse=metric.higher_is_better)
    return dataclasses.replace(table, rows=scored[:count])
