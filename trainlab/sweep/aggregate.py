"""Group a sweep's jobs into table rows and collapse replicates into mean ± std.

A row is one configuration: the jobs that agree on every *grouping key*. By
default those are the swept factors, the override keys whose values differ
across jobs, minus the replicate keys (seed, CV fold); everything else that
differs inside a row (seeds, folds, or factors left out of `--by`) is
collapsed. Spreads are sample standard deviations (ddof=1), undefined for a
single job.

Only completed jobs enter the means. The others are counted, not hidden: a row
whose jobs all failed shows e.g. "failed 2/2" in its cells, a partly failed row
says "(1 failed)". Divergence is a finding about the configuration (a too-high
learning rate), not an accident, so it gets its own count ("(1 diverged)").
"""
from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass, field

from trainlab.errors import ConfigError
from trainlab.sweep.derived import NOT_REACHED
from trainlab.sweep.metric import Metric, parse_metrics
from trainlab.sweep.runs import STATUSES, RunRecord

MIN_SEEDS = 3  # below this a standard deviation says little about the spread
EDGE = 0.1  # outer fraction of a search range that flags a badly placed range


@dataclass
class Cell:
    values: list[float]
    not_reached: int = 0  # jobs whose curve never reached an epochs_to/steps_to threshold (not in the mean)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if self.n >= 2 else None


@dataclass
class Row:
    values: dict[str, str | None]  # grouping key -> this row's value
    records: list[RunRecord]
    cells: dict[str, Cell] = field(default_factory=dict)  # metric spec -> cell
    delta: float | None = None  # first metric's mean minus the baseline row's

    @property
    def done(self) -> list[RunRecord]:
        return [r for r in self.records if r.status == "completed"]

    @property
    def n(self) -> int:
        return len(self.done)

    @property
    def label(self) -> str:
        text = ", ".join(f"{k}={'—' if v is None else v}" for k, v in self.values.items())
        return text or "all jobs"

    def counts(self) -> dict[str, int]:
        """Jobs per status, the engine's statuses first, then any unknown word."""
        found = [r.status for r in self.records]
        order = list(STATUSES) + sorted(set(found) - set(STATUSES))
        return {s: found.count(s) for s in order if s in found}

    def status_text(self) -> str:
        """What a row with no completed job shows in its metric cells."""
        total = len(self.records)
        return ", ".join(f"{s} {c}/{total}" for s, c in self.counts().items())

    def note(self) -> str:
        """Non-completed jobs of a row that still has results, e.g. "(1 failed)", then how many jobs
        got each diagnosis label, e.g. "not_learning 3/3"."""
        parts = [f"{c} {s}" for s, c in self.counts().items() if s != "completed"]
        status = f"({', '.join(parts)})" if parts and self.n else ""
        return "; ".join(t for t in (status, self.diagnoses()) if t)

    def diagnoses(self) -> str:
        kinds: dict[str, int] = {}
        for record in self.records:
            found = record.summary.get("diagnosis") or []
            for kind in dict.fromkeys(f.get("kind") for f in found if isinstance(f, dict) and f.get("kind")):
                kinds[kind] = kinds.get(kind, 0) + 1  # each label once per job
        return ", ".join(f"{k} {c}/{len(self.records)}" for k, c in kinds.items())


@dataclass
class Table:
    keys: list[str]
    metrics: list[Metric]
    rows: list[Row]
    baseline: Row | None = None
    warnings: list[str] = field(default_factory=list)


def swept_keys(records: list[RunRecord]) -> list[str]:
    """Override keys (replicates excluded) taking more than one value across jobs."""
    keys: list[str] = []
    for record in records:
        keys += [k for k in record.factors if k not in keys]
    return [k for k in keys if len({r.lookup(k) for r in records}) > 1]


def build_table(
    records: list[RunRecord],
    metrics: list[str] | None = None,
    by: list[str] | None = None,
    baseline: str | None = None,
    sort: str | None = None,
) -> Table:
    """The ablation table of a sweep; bad arguments raise a one-line ConfigError."""
    parsed = parse_metrics(metrics, records, swept=swept_keys(records))
    sort_metric = None
    if sort:
        sort_metric = parse_metrics([sort], records, arg="--sort")[0]
        if sort_metric not in parsed:
            parsed.append(sort_metric)
    keys = _check_keys(by, records) if by else swept_keys(records)

    rows: dict[tuple, Row] = {}
    for record in records:  # records come in job order, so rows keep the sweep's order
        values = {k: record.lookup(k) for k in keys}
        rows.setdefault(tuple(values.values()), Row(values, [])).records.append(record)
    table = Table(keys, parsed, list(rows.values()))
    for row in table.rows:
        for metric in parsed:
            found = [metric.value(r) for r in row.done]
            row.cells[metric.spec] = Cell([v for v in found if isinstance(v, float | int)],
                                          not_reached=found.count(NOT_REACHED))

    if baseline:
        table.baseline = _find_baseline(baseline, table)
        first, base = parsed[0].spec, table.baseline.cells[parsed[0].spec].mean
        for row in table.rows:
            mean = row.cells[first].mean
            row.delta = None if mean is None or base is None else mean - base
    if sort_metric:
        _sort_rows(table.rows, sort_metric)
    table.warnings = read_warnings(records) + spread_warnings(table)
    return table


def _check_keys(by: list[str], records: list[RunRecord]) -> list[str]:
    for key in by:
        if not any(r.lookup(key) is not None for r in records):
            known = sorted({k for r in records for k in [*r.overrides, *r.choices]})
            raise ConfigError(
                "--by", key,
                f"choose an override key or config group of this sweep ({', '.join(known)}) or a config path",
            )
    return list(dict.fromkeys(by))  # a key given twice is one column


def _find_baseline(text: str, table: Table) -> Row:
    wanted = {}
    # split at commas that start a new key=, so list values like [l2,dropout] survive
    for pair in re.split(r",(?=[\w.+/@-]+=)", text):
        key, sep, value = pair.partition("=")
        if not sep or key.strip() not in table.keys:
            raise ConfigError(
                "--baseline", text,
                f"write key=value[,key=value] with keys among the row keys ({', '.join(table.keys) or 'none'})",
            )
        wanted[key.strip()] = value.strip()
    matches = [r for r in table.rows if all(_same(r.values[k], v) for k, v in wanted.items())]
    if len(matches) != 1:
        problem = "matches no row" if not matches else f"matches {len(matches)} rows; add keys to pick one"
        rows = "; ".join(r.label for r in table.rows)
        raise ConfigError("--baseline", text, f"it {problem} (rows: {rows})")
    return matches[0]


def _same(a: str | None, b: str) -> bool:
    """Value equality that also treats 0.01 and 1e-2 as the same number."""
    if a == b:
        return True
    x, y = _as_float(a), _as_float(b)
    return x is not None and y is not None and x == y


def _as_float(text) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _sort_rows(rows: list[Row], metric: Metric) -> None:
    """Best first on `metric`; rows without a value (all failed) go last."""
    sign = -1 if metric.higher_is_better else 1

    def key(row: Row):
        cell = row.cells[metric.spec]
        return (0, sign * cell.mean) if _has_mean(cell) else (1, 0.0)

    rows.sort(key=key)  # stable: ties keep the sweep order


def read_warnings(records: list[RunRecord]) -> list[str]:
    notes = [f"{r.name}: {p}" for r in records for p in r.problems]
    return [f"damaged job folders: {_first_few(notes)}"] if notes else []


def spread_warnings(table: Table) -> list[str]:
    """Warnings about how far the table's means can be trusted."""
    warnings = []
    few = [f"{r.label} (n={r.n})" for r in table.rows if 0 < r.n < MIN_SEEDS]
    if few:
        warnings.append(f"fewer than {MIN_SEEDS} seeds: spreads are unreliable for {_first_few(few)}")
    empty = [f"{r.label} ({r.status_text()})" for r in table.rows if r.n == 0]
    if empty:
        warnings.append(f"no completed job for {_first_few(empty)}")

    # Is the winner distinguishable from the runner-up on the first metric?
    metric = table.metrics[0]
    ranked = [r for r in table.rows if _has_mean(r.cells[metric.spec])]
    _sort_rows(ranked, metric)
    if len(ranked) >= 2:
        best, second = (r.cells[metric.spec] for r in ranked[:2])
        # a single job has no spread; treat it as a point
        if best.mean - (best.std or 0) <= second.mean + (second.std or 0) and \
                second.mean - (second.std or 0) <= best.mean + (best.std or 0):
            warnings.append(
                f"on {metric.label} the best row ({ranked[0].label}: {_pm(metric, best)}) overlaps "
                f"the runner-up ({ranked[1].label}: {_pm(metric, second)}) within one standard "
                "deviation: the ranking may be noise; run more seeds"
            )
    return warnings


def _has_mean(cell: Cell) -> bool:
    return cell.mean is not None and not math.isnan(cell.mean)


def _pm(metric: Metric, cell: Cell) -> str:
    text = metric.format(cell.mean)
    return text if cell.std is None else f"{text} ± {metric.format(cell.std)}"


def _first_few(items: list[str], limit: int = 5) -> str:
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return "; ".join(items[:limit]) + more


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
