"""How sure a table is: each row's Δ to the baseline with its interval and test (Holm-corrected
across the rows), the best row only when it is distinguishable from the runner-up, the seeds a
resolved Δ would take, and the lines printed under the table that say how to read all this.

Reach metrics (epochs_to / steps_to) enter every statistic through the runs that reached the
threshold: a run that never did has no arrival time to average, so it is counted beside the mean
("1/3 not reached") and left out of the mean, the interval and the tests (which then pair only
seeds that reached on both sides, or fall back to Welch's test).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from trainlab.sweep.stats import ALPHA, LEVEL, POWER, Comparison, compare, holm, runs_needed

if TYPE_CHECKING:  # aggregate imports this module
    from trainlab.sweep.aggregate import Cell, Row, Table
    from trainlab.sweep.metric import Metric

NOT_DISTINGUISHABLE = "≈"


def add_statistics(table: Table) -> None:
    """Fill in the rows' comparisons with the baseline, the best row, the warnings and the footer."""
    metric = table.metrics[0]
    if table.baseline is not None:
        compare_with_baseline(table, metric)
    best_line = mark_best(table, metric)
    table.footer = footer(table, metric, best_line)


def compare_with_baseline(table: Table, metric: Metric) -> None:
    base = table.baseline.cells[metric.spec]
    compared = []
    for row in table.rows:
        cell = row.cells[metric.spec]
        if row is table.baseline or not _usable(cell) or not _usable(base):
            continue
        row.comparison = compare(cell.values, cell.ids, base.values, base.ids)
        compared.append(row.comparison)
    for comparison, adjusted in zip(compared, holm([c.p for c in compared])):
        comparison.p_holm = adjusted


def mark_best(table: Table, metric: Metric) -> str | None:
    """Mark the top row best when a test tells it from the runner-up; the footer's line about it
    (a warning instead when it cannot be told apart)."""
    ranked = sorted((r for r in table.rows if _usable(r.cells[metric.spec])),
                    key=lambda r: r.cells[metric.spec].mean, reverse=metric.higher_is_better)
    if len(ranked) < 2:
        return None
    top, second = ranked[0], ranked[1]
    a, b = top.cells[metric.spec], second.cells[metric.spec]
    versus = compare(a.values, a.ids, b.values, b.ids)
    shown = f"{metric.label}: {top.label} ({_pm(metric, a)}) vs the runner-up {second.label} ({_pm(metric, b)}), " \
            f"{describe(metric, versus)}"
    if versus.distinguishable:
        top.best = True
        return f"best on {shown}"
    if table.search and versus.test == "none":
        return f"trials are ranked, not tested (one run each): the top trial on {shown}"
    table.warnings.append(f"on {metric.label} the best row ({top.label}: {_pm(metric, a)}) is not distinguishable "
                          f"from the runner-up ({second.label}: {_pm(metric, b)}): {describe(metric, versus)}; "
                          "no row is called best; run more seeds")
    return None


def describe(metric: Metric, c: Comparison) -> str:
    """"Δ +1.20 [+0.30, +2.10], paired t-test, p = 0.021" (or why there is no test)."""
    text = f"Δ {_amount(metric, c.delta, signed=True)}"
    if c.test == "none":
        reason = "no spread on either side" if c.spread == 0 else "fewer than 2 runs on a side"
        return f"{text}, no test ({reason})"
    name = "paired t-test" if c.test == "paired" else "Welch's t-test"
    return f"{text} {interval_text(metric, c.low, c.high, signed=True)}, {name}, p = {p_text(c.p)}"


def footer(table: Table, metric: Metric, best_line: str | None) -> list[str]:
    lines = [f"mean ± std [{LEVEL:.0%} CI]: over each row's n completed runs; the interval is the Student-t "
             f"{LEVEL:.0%} confidence interval of the mean (none when n < 2)."]
    if table.search and table.rows and max(r.n for r in table.rows) <= 1:
        lines[0] = "one run per trial: no spreads or intervals; the search is read from its picture (table.png)."
    compared = [r for r in table.rows if r.comparison is not None]
    if compared:
        lines.append(f"Δ vs baseline [{LEVEL:.0%} CI], p (Holm): {tests_used(table, compared)}; two-sided p-values, "
                     f"Holm-corrected across the {sum(r.comparison.p is not None for r in compared)} rows compared "
                     "with the baseline.")
        lines.append(f"{NOT_DISTINGUISHABLE} not distinguishable from the baseline: Holm-corrected p ≥ {ALPHA:g}, or no "
                     "test possible (fewer than 2 runs on a side, or no spread at all); every row whose Δ interval "
                     "contains 0 is one.")
    if best_line:
        lines.append(best_line + ".")
    power = power_line(table, metric, compared)
    if power:
        lines.append(power)
    reach = [m.label for m in table.metrics if m.derived is not None and m.derived.op is not None]
    if reach:
        lines.append(f"{', '.join(reach)}: mean, interval and tests over the runs that reached the threshold; runs "
                     "that never did are counted (k/n not reached) and left out, so such a row looks faster than it is.")
    return lines


def tests_used(table: Table, compared: list[Row]) -> str:
    by_test: dict[str, list[str]] = {}
    for row in compared:
        by_test.setdefault(row.comparison.test, []).append(row.label)
    seeds = sorted({str(i[0]) for i in table.baseline.cells[table.metrics[0].spec].ids if i is not None},
                   key=lambda s: (len(s), s))
    names = {"paired": f"paired t-test over the shared seeds ({', '.join(seeds)})",
             "welch": "Welch's t-test (the rows do not share the baseline's seeds, or their paired differences "
                      "are all equal)",
             "none": "no test"}
    if len(by_test) == 1:
        return names[next(iter(by_test))]
    return "; ".join(f"{names[t]} for {', '.join(labels)}" for t, labels in by_test.items())


def power_line(table: Table, metric: Metric, compared: list[Row]) -> str | None:
    """How many runs per row would resolve the smallest observed Δ at 80% power, when the table
    has fewer. Its α is 0.05 divided by the rows compared: the strictest step of Holm's correction."""
    candidates = [r.comparison for r in compared if r.comparison.test != "none" and r.comparison.delta != 0]
    family = max(1, len(candidates))
    where = "the baseline"
    if not candidates:  # no baseline: the best row against the runner-up
        ranked = sorted((r for r in table.rows if _usable(r.cells[metric.spec])),
                        key=lambda r: r.cells[metric.spec].mean, reverse=metric.higher_is_better)
        if len(ranked) < 2:
            return None
        a, b = ranked[0].cells[metric.spec], ranked[1].cells[metric.spec]
        candidates, family, where = [compare(a.values, a.ids, b.values, b.ids)], 1, "the runner-up"
        if candidates[0].test == "none" or candidates[0].delta == 0:
            return None
    smallest = min(candidates, key=lambda c: abs(c.delta))
    alpha = ALPHA / family
    needed = runs_needed(smallest.delta, smallest.spread, smallest.test == "paired", alpha=alpha)
    if smallest.distinguishable or (needed is not None and needed <= smallest.n):
        return None  # resolved already, or would be at this n: the observed Δ was just unlucky
    spread = "the paired differences" if smallest.test == "paired" else "the runs (rms of both rows)"
    amount = f"about {needed}" if needed is not None else "more than 10000"
    return (f"power: resolving the smallest Δ to {where} ({_amount(metric, smallest.delta, signed=True)}, "
            f"std of {spread} {_amount(metric, smallest.spread)}) at {POWER:.0%} power with a two-sided "
            f"t-test at α = {alpha:.3g} takes {amount} runs per row; this table has {smallest.n}.")


def interval_text(metric: Metric, low: float | None, high: float | None, signed: bool = False) -> str:
    if low is None or high is None:
        return ""
    return f"[{metric.format(low, signed=signed)}, {metric.format(high, signed=signed)}]"


def p_text(p: float | None) -> str:
    if p is None:
        return "—"
    return f"{p:.2g}" if p >= 0.001 else "<0.001"


def _amount(metric: Metric, value: float, signed: bool = False) -> str:
    """A difference or spread with its unit: differences of percentages are percentage points."""
    return metric.format(value, signed=signed) + (" pp" if metric.kind == "percent" else "")


def _usable(cell: Cell) -> bool:
    return bool(cell.values) and all(math.isfinite(v) for v in cell.values)


def _pm(metric: Metric, cell: Cell) -> str:
    text = metric.format(cell.mean)
    return text if cell.std is None else f"{text} ± {metric.format(cell.std)}"
