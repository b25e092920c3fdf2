"""The numbers behind "how sure is this table": intervals, tests, Holm's correction, seeds needed.

Pure functions over lists of floats; SciPy does the distributions. SciPy is imported inside the
functions, so importing this module costs nothing, and only `trainlab table` and the report at the
end of a sweep ever call them (never the training path). The t statistics are the textbook
formulas over scipy.special's t and noncentral-t functions rather than scipy.stats' tests: importing
scipy.stats took 0.8 s, scipy.special 0.3 s, and every sweep pays it twice at its end (the table,
and the drawer's table.png), more than a small job's training.

    mean_interval     Student-t 95% interval of a mean (n >= 2)
    compare           Δ = mean(a) - mean(b), its 95% interval and two-sided p-value: the paired t-test
                      over replicates when both sides ran the same replicates (seeds, folds), Welch's
                      t-test otherwise (and when the paired differences are all equal)
    holm              Holm's step-down adjustment of a family of p-values
    runs_needed       replicates per row for a two-sided t-test to detect Δ at 80% power
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

LEVEL = 0.95  # confidence of every interval in a table
ALPHA = 1 - LEVEL  # a Holm-adjusted p below this: distinguishable
POWER = 0.8
MAX_RUNS = 10_000  # runs_needed gives up beyond this


def mean_interval(values: Sequence[float], level: float = LEVEL) -> tuple[float, float] | None:
    """The Student-t interval of the mean; None for fewer than 2 values."""
    if len(values) < 2:
        return None
    mean, sem = statistics.fmean(values), statistics.stdev(values) / math.sqrt(len(values))
    if sem == 0:
        return mean, mean  # identical values: t's interval collapses to the point
    half = _t_quantile(len(values) - 1, level) * sem
    return mean - half, mean + half


def _t_quantile(df: float, level: float) -> float:
    """The two-sided `level` critical value of Student's t with `df` degrees of freedom."""
    from scipy.special import stdtrit

    return float(stdtrit(df, (1 + level) / 2))


def _t_test(delta: float, se: float, df: float, level: float, comparison: Comparison) -> Comparison:
    """`comparison` with the interval of `delta` (standard error `se`, t with `df` degrees of freedom)
    and its two-sided p-value of delta = 0."""
    from scipy.special import stdtr

    half = _t_quantile(df, level) * se
    comparison.low, comparison.high = delta - half, delta + half
    comparison.p = float(2 * stdtr(df, -abs(delta) / se))
    return comparison


@dataclass
class Comparison:
    """Row a vs row b on one metric."""
    delta: float  # mean(a) - mean(b)
    test: str  # "paired" | "welch" | "none" (fewer than 2 runs on a side, or no spread at all)
    n: int  # pairs (paired), else the smaller side's runs
    low: float | None = None  # the 95% interval of delta
    high: float | None = None
    p: float | None = None  # two-sided, uncorrected
    p_holm: float | None = None  # set by the table across its rows
    spread: float | None = None  # sd of the paired differences, or the two sides' rms sd (Welch)

    @property
    def distinguishable(self) -> bool:
        p = self.p_holm if self.p_holm is not None else self.p
        return p is not None and p < ALPHA


def same_replicates(a_ids: Sequence[Hashable], b_ids: Sequence[Hashable]) -> bool:
    """Both sides ran each replicate once and the same replicates: the pairing is well defined."""
    return (None not in a_ids and None not in b_ids and len(set(a_ids)) == len(a_ids) == len(b_ids)
            and set(a_ids) == set(b_ids))


def compare(a: Sequence[float], a_ids: Sequence[Hashable], b: Sequence[float], b_ids: Sequence[Hashable],
            level: float = LEVEL) -> Comparison:
    """Δ of a's mean over b's, with the paired t-test when the replicates match, else Welch's."""
    delta = statistics.fmean(a) - statistics.fmean(b)
    if same_replicates(a_ids, b_ids) and len(a) >= 2:
        order_a, order_b = _by_id(a, a_ids), _by_id(b, b_ids)
        diffs = [x - y for x, y in zip(order_a, order_b)]
        spread = statistics.stdev(diffs)
        # identical differences on every seed (a discrete metric, a constant offset): the paired t
        # is d/0 and undefined; Welch's test on the rows' own spreads still says something
        if not _no_spread(spread, diffs):
            n = len(diffs)
            return _t_test(statistics.fmean(diffs), spread / math.sqrt(n), n - 1, level,
                           Comparison(delta, "paired", len(a), spread=spread))
    if len(a) < 2 or len(b) < 2:
        return Comparison(delta, "none", min(len(a), len(b)))
    sa, sb = statistics.stdev(a), statistics.stdev(b)
    spread = math.sqrt((sa * sa + sb * sb) / 2)
    if _no_spread(spread, [*a, *b]):
        return Comparison(delta, "none", min(len(a), len(b)), spread=0.0)
    va, vb = sa * sa / len(a), sb * sb / len(b)  # Welch: each mean's variance, Satterthwaite's df
    df = (va + vb) ** 2 / (va * va / (len(a) - 1) + vb * vb / (len(b) - 1))
    return _t_test(delta, math.sqrt(va + vb), df, level, Comparison(delta, "welch", min(len(a), len(b)), spread=spread))


def _by_id(values: Sequence[float], ids: Sequence[Hashable]) -> list[float]:
    return [v for _, v in sorted(zip(map(repr, ids), values))]


def _no_spread(spread: float, values: Sequence[float]) -> bool:
    # float noise (0.92 - 0.91 is not exactly 0.01) must not pass for a real, tiny spread:
    # with no spread the t statistic is 0/0 or d/0 and its p-value means nothing
    return spread <= 1e-12 * max(1.0, max(abs(v) for v in values))


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's adjusted p-values, in the input order (None stays None and is not counted):
    the k-th smallest of m is multiplied by m - k + 1, then made non-decreasing, capped at 1."""
    ranked = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    m = len(ranked)
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for k, (p, i) in enumerate(ranked):
        running = max(running, min(1.0, (m - k) * p))
        adjusted[i] = running
    return adjusted


def power(effect: float, n: int, paired: bool, alpha: float = ALPHA) -> float:
    """Power of the two-sided t-test at `n` runs per row for a standardized effect |Δ| / spread:
    the one-sample test of n paired differences, or two groups of n (equal variances)."""
    from scipy.special import nctdtr

    df = n - 1 if paired else 2 * n - 2
    shift = effect * math.sqrt(n if paired else n / 2)  # the noncentrality of the t statistic
    critical = _t_quantile(df, 1 - alpha)
    return float(1 - nctdtr(df, shift, critical) + nctdtr(df, shift, -critical))


def runs_needed(delta: float, spread: float, paired: bool, alpha: float = ALPHA, target: float = POWER) -> int | None:
    """The fewest runs per row with power >= target to detect `delta`; None beyond MAX_RUNS
    (or no difference at all)."""
    if spread <= 0 or delta == 0:
        return None
    effect = abs(delta) / spread
    if power(effect, MAX_RUNS, paired, alpha) < target:
        return None
    low, high = 1, 2  # power(low) < target <= power(high), found by doubling then bisection
    while power(effect, high, paired, alpha) < target:
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if power(effect, middle, paired, alpha) < target else (low, middle)
    return max(high, 2)
