"""Group a sweep's jobs into table rows and collapse replicates into mean ± std.

A row is one configuration: the jobs that agree on every *grouping key*. By
default those are the swept factors, the override keys whose values differ
across jobs, minus the replicate keys (seed, CV fold); everything else that
differs inside a row (seeds, folds, or factors left out of `--by`) is
collapsed. Spreads are sample standard deviations (ddof=1), undefined for a
single job. Each value keeps its replicate (seed, fold), so that the table's
statistics (trainlab.sweep.significance: intervals, Δ to the baseline with its
paired or Welch test, Holm, the best row) can pair rows that ran the same seeds.

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
from trainlab.sweep.runs import REPLICATE_KEYS, STATUSES, RunRecord
from trainlab.sweep.significance import add_statistics
from trainlab.sweep.stats import Comparison

MIN_SEEDS = 3  # below this a standard deviation says little about the spread


@dataclass
class Cell:
    values: list[float]
    not_reached: int = 0  # jobs whose curve never reached an epochs_to/steps_to threshold (not in the mean)
    ids: list = field(default_factory=list)  # each value's replicate (seed, fold): pairs rows for the paired test

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if self.n >= 2 else None

    @property
    def interval(self) -> tuple[float, float] | None:
        """The 95% Student-t interval of the mean; None below 2 values."""
        from trainlab.sweep.stats import mean_interval

        return mean_interval(self.values) if all(math.isfinite(v) for v in self.values) else None


@dataclass
class Row:
    values: dict[str, str | None]  # grouping key -> this row's value
    records: list[RunRecord]
    cells: dict[str, Cell] = field(default_factory=dict)  # metric spec -> cell
    delta: float | None = None  # first metric's mean minus the baseline row's
    comparison: Comparison | None = None  # that Δ's interval and test (trainlab.sweep.significance)
    best: bool = False  # best on the first metric AND distinguishable from the runner-up

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
    footer: list[str] = field(default_factory=list)  # how to read the statistics, printed under the table
    search: bool = False  # a random or Optuna search: rows are trials, ranked rather than tested


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
    search: bool = False,
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
    table = Table(keys, parsed, list(rows.values()), search=search)
    for row in table.rows:
        for metric in parsed:
            found = [(metric.value(r), replicate_id(r)) for r in row.done]
            kept = [(v, i) for v, i in found if isinstance(v, float | int)]
            row.cells[metric.spec] = Cell([v for v, _ in kept], ids=[i for _, i in kept],
                                          not_reached=[v for v, _ in found].count(NOT_REACHED))

    if baseline:
        table.baseline = _find_baseline(baseline, table)
        first, base = parsed[0].spec, table.baseline.cells[parsed[0].spec].mean
        for row in table.rows:
            mean = row.cells[first].mean
            row.delta = None if mean is None or base is None else mean - base
    if sort_metric:
        _sort_rows(table.rows, sort_metric)
    table.warnings = read_warnings(records) + spread_warnings(table)
    add_statistics(table)
    return table


def replicate_id(record: RunRecord) -> tuple | None:
    """Which replicate a job is (its seed and CV fold); None when its seed is unknown."""
    found = tuple(record.lookup(k) for k in REPLICATE_KEYS)
    return None if found[0] is None else found


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
    if few and not table.search:  # a search's trials run one seed each on purpose
        warnings.append(f"fewer than {MIN_SEEDS} seeds: spreads are unreliable for {_first_few(few)}")
    empty = [f"{r.label} ({r.status_text()})" for r in table.rows if r.n == 0]
    if empty:
        warnings.append(f"no completed job for {_first_few(empty)}")
    return warnings


def _has_mean(cell: Cell) -> bool:
    return cell.mean is not None and not math.isnan(cell.mean)


def _first_few(items: list[str], limit: int = 5) -> str:
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return "; ".join(items[:limit]) + more
