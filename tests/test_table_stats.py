"""The table's statistics: intervals, paired vs Welch tests, Holm, power, checked against hand-computed
values and SciPy's own routines; the ≈ marking on constructed sweeps whose answer is known."""
import csv
import io
import math

import pytest
from scipy import stats as sp

from test_table import make_job, summary
from trainlab.sweep.aggregate import build_table
from trainlab.sweep.render import render
from trainlab.sweep.runs import load_sweep
from trainlab.sweep.stats import compare, holm, mean_interval, power, runs_needed

T_975_DF2 = 4.302652729911275  # the 97.5% quantile of Student's t with 2 degrees of freedom (printed tables: 4.303)


def test_mean_interval_by_hand_and_against_scipy():
    # [1, 2, 3]: mean 2, sd 1, standard error 1/sqrt(3); half-width t(0.975, 2) / sqrt(3)
    low, high = mean_interval([1.0, 2.0, 3.0])
    assert (low, high) == pytest.approx((2 - T_975_DF2 / math.sqrt(3), 2 + T_975_DF2 / math.sqrt(3)), abs=1e-9)
    assert (low, high) == pytest.approx((-0.4841377, 4.4841377), abs=1e-6)
    values = [0.91, 0.935, 0.88, 0.902, 0.917]
    reference = sp.t.interval(0.95, 4, loc=sp.tmean(values), scale=sp.sem(values))
    assert mean_interval(values) == pytest.approx(reference, abs=1e-12)
    assert mean_interval([0.9]) is None and mean_interval([0.5, 0.5]) == (0.5, 0.5)


def test_paired_test_by_hand():
    # differences 2, 3, 1 over seeds 0..2: mean 2, sd 1, t = 2 sqrt(3) on 2 degrees of freedom,
    # whose two-sided tail has the closed form 1 - t / sqrt(t² + 2) = 1 - sqrt(12 / 14)
    c = compare([3.0, 5.0, 4.0], [0, 1, 2], [1.0, 2.0, 3.0], [0, 1, 2])
    assert c.test == "paired" and c.n == 3 and c.delta == pytest.approx(2.0)
    assert c.p == pytest.approx(1 - math.sqrt(12 / 14), abs=1e-12)
    assert (c.low, c.high) == pytest.approx((2 - T_975_DF2 / math.sqrt(3), 2 + T_975_DF2 / math.sqrt(3)), abs=1e-9)
    assert c.spread == pytest.approx(1.0)
    # pairing follows the seed, not the order the jobs came in
    shuffled = compare([4.0, 3.0, 5.0], [2, 0, 1], [1.0, 2.0, 3.0], [0, 1, 2])
    assert (shuffled.p, shuffled.low) == pytest.approx((c.p, c.low))


def test_paired_and_welch_against_scipy():
    a, b = [0.912, 0.931, 0.905, 0.925], [0.90, 0.915, 0.899, 0.921]
    paired = compare(a, ["s0", "s1", "s2", "s3"], b, ["s0", "s1", "s2", "s3"])
    reference = sp.ttest_rel(a, b)
    assert paired.test == "paired" and paired.p == pytest.approx(reference.pvalue, rel=1e-12)
    diffs = [x - y for x, y in zip(a, b)]
    half = sp.t.ppf(0.975, 3) * sp.sem(diffs)
    assert (paired.low, paired.high) == pytest.approx((sum(diffs) / 4 - half, sum(diffs) / 4 + half), abs=1e-12)

    # Welch by hand: [1, 2, 3] vs [4, 6, 8]: variances 1 and 4, se² = 5/3, Welch-Satterthwaite df = 50/17
    welch = compare([1.0, 2.0, 3.0], [0, 1, 2], [4.0, 6.0, 8.0], [3, 4, 5])
    assert welch.test == "welch" and welch.delta == pytest.approx(-4.0)
    se = math.sqrt(5 / 3)
    assert welch.p == pytest.approx(2 * sp.t.sf(4 / se, 50 / 17), rel=1e-12)
    assert welch.p == pytest.approx(sp.ttest_ind([1, 2, 3], [4, 6, 8], equal_var=False).pvalue, rel=1e-12)
    half = sp.t.ppf(0.975, 50 / 17) * se
    assert (welch.low, welch.high) == pytest.approx((-4 - half, -4 + half), abs=1e-9)


@pytest.mark.parametrize("a_ids, b_ids, a, expected", [
    ([0, 1, 2], [0, 1, 2], [0.9, 0.92, 0.95], "paired"),  # the same seeds: paired
    ([0, 1, 2], [3, 4, 5], [0.9, 0.92, 0.95], "welch"),  # different seeds
    ([0, 1, 2], [0, 1, 3], [0.9, 0.92, 0.95], "welch"),  # overlapping but not the same
    ([0, 0, 1], [0, 0, 1], [0.9, 0.92, 0.95], "welch"),  # a seed twice (rows collapsed with --by): no pairing
    ([None, 1, 2], [None, 1, 2], [0.9, 0.92, 0.95], "welch"),  # a seed unknown
    ([0, 1, 2], [0, 1, 2], [0.91, 0.92, 0.93], "welch"),  # equal paired differences: the paired t is undefined
    ([0], [0], [0.9], "none"),  # one run a side
])
def test_paired_or_welch(a_ids, b_ids, a, expected):
    b = [0.90, 0.91, 0.92][:len(a)]
    assert compare(a, a_ids, b, b_ids).test == expected


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04, 0.5 (m = 4): 0.04, 0.09, max(0.09, 0.08) = 0.09, 0.5; None is not counted
    assert holm([0.01, 0.04, 0.03, None, 0.5]) == pytest.approx([0.04, 0.09, 0.09, None, 0.5])
    assert holm([0.3, 0.6]) == pytest.approx([0.6, 0.6]) and holm([0.7, 0.9]) == [1.0, 1.0]


def test_power_and_runs_needed_match_the_textbook():
    # Cohen's tables: a paired test needs 10 pairs for d_z = 1 and 34 for 0.5 (alpha 0.05 two-sided,
    # power 0.8); two groups need 17 each for d = 1 and 64 each for d = 0.5
    assert power(1.0, 10, paired=True) == pytest.approx(0.8031, abs=1e-4)
    assert runs_needed(0.01, 0.01, paired=True) == 10 and runs_needed(-0.5, 1.0, paired=True) == 34
    assert runs_needed(1.0, 1.0, paired=False) == 17 and runs_needed(0.5, 1.0, paired=False) == 64
    assert runs_needed(1e-6, 1.0, paired=True) is None  # beyond 10000 runs
    assert runs_needed(1.0, 1.0, paired=True, alpha=0.01) > 10


BASE = [0.80, 0.82, 0.81, 0.83]
BETTER = [0.10, 0.11, 0.09, 0.10]  # + 10 pp on every seed: clearly distinguishable
NOISE = [0.01, -0.004, 0.006, -0.002]  # +0.25 pp on average, ± 0.7 pp: not distinguishable


def constructed(root, seeds_of=lambda name, s: s):
    """Rows a (baseline), b = a + 10 pp, c = a + noise, four seeds each."""
    num = 0
    for name, offsets in (("a", [0.0] * 4), ("b", BETTER), ("c", NOISE)):
        for s, (base, offset) in enumerate(zip(BASE, offsets)):
            seed = seeds_of(name, s)
            make_job(root, num, [f"arch={name}", f"seed={seed}"], summary(val_acc=base + offset))
            num += 1
    return load_sweep(root)


def test_the_not_distinguishable_row_is_marked_on_a_known_sweep(tmp_path):
    table = build_table(constructed(tmp_path / "s"), metrics=["best.val_acc"], baseline="arch=a")
    rows = {r.values["arch"]: r for r in table.rows}
    b, c = rows["b"].comparison, rows["c"].comparison
    assert b.test == c.test == "paired"
    assert b.distinguishable and b.low > 0
    assert not c.distinguishable and c.low < 0 < c.high
    raw = [sp.ttest_rel([x + o for x, o in zip(BASE, off)], BASE).pvalue for off in (BETTER, NOISE)]
    assert [b.p, c.p] == pytest.approx(raw, rel=1e-12)
    assert [b.p_holm, c.p_holm] == pytest.approx(holm(raw), rel=1e-12)

    lines = render(table, "markdown").splitlines()
    assert lines[3].startswith("| b | ") and "| +10.00 [" in lines[3] and "≈" not in lines[3]
    assert lines[4].startswith("| c | ") and "| ≈ +0.25 [" in lines[4]
    assert "| best |" in lines[3]  # b is above the runner-up (a or c) by far more than the noise
    assert any(line.startswith("- ≈ not distinguishable from the baseline") for line in lines)
    assert any("paired t-test over the shared seeds (0, 1, 2, 3)" in line and "Holm-corrected across the 2 rows"
               in line for line in lines)
    power_line = next(line for line in lines if line.startswith("- power:"))
    needed = runs_needed(c.delta, c.spread, True, alpha=0.05 / 2)
    assert f"takes about {needed} runs per row; this table has 4" in power_line and 20 < needed < 200

    out = list(csv.DictReader(io.StringIO(render(table, "csv"))))
    assert [r["delta_best.val_acc_distinguishable"] for r in out] == ["", "1", "0"]
    assert float(out[2]["delta_best.val_acc_p_holm"]) == c.p_holm  # full precision
    assert float(out[1]["best.val_acc_ci_low"]) == rows["b"].cells["best.val_acc"].interval[0]
    assert [r["best"] for r in out] == ["0", "1", "0"]
    for fmt in ("terminal", "latex"):
        text = render(table, fmt)
        assert ("≈ +0.25" in text or "$\\approx$ +0.25" in text) and "Holm-corrected" in text


def test_rows_that_ran_other_seeds_get_welch(tmp_path):
    records = constructed(tmp_path / "s", seeds_of=lambda name, s: s + (10 if name == "c" else 0))
    table = build_table(records, metrics=["best.val_acc"], baseline="arch=a")
    rows = {r.values["arch"]: r.comparison for r in table.rows if r.comparison}
    assert rows["b"].test == "paired" and rows["c"].test == "welch"
    c_values = [x + o for x, o in zip(BASE, NOISE)]
    assert rows["c"].p == pytest.approx(sp.ttest_ind(c_values, BASE, equal_var=False).pvalue, rel=1e-12)
    assert "Welch's t-test" in render(table, "markdown")


def test_best_only_when_distinguishable_from_the_runner_up(tmp_path):
    table = build_table(constructed(tmp_path / "s"), metrics=["best.val_acc"])
    assert [r.best for r in table.rows] == [False, True, False] and not table.warnings
    close = tmp_path / "close"
    for num, (name, acc) in enumerate([("a", a) for a in (0.90, 0.93, 0.91)] + [("b", a) for a in (0.91, 0.90, 0.92)]):
        make_job(close, num, [f"arch={name}", f"seed={num % 3}"], summary(val_acc=acc))
    table = build_table(load_sweep(close), metrics=["best.val_acc"])
    assert not any(r.best for r in table.rows)
    (warning,) = table.warnings
    assert "is not distinguishable from the runner-up" in warning and "paired t-test" in warning
    rows = render(table, "markdown").splitlines()[2:4]
    assert all(row.endswith("| 3 |  |") for row in rows)  # no row says best in its notes


def test_reach_metrics_use_the_runs_that_reached(tmp_path):
    """regularizer=l2 reaches 90% in 2 of 3 seeds: its statistics are over those two, the pairing
    with the baseline's three seeds breaks, and the table says how not-reached runs are handled."""
    from test_derived_metrics import write_curve

    root = tmp_path / "s"
    curves = {"none": [[0.1, 0.8, 0.9, 0.9], [0.1, 0.9, 0.9, 0.9], [0.1, 0.8, 0.8, 0.9]],
              "l2": [[0.1, 0.5, 0.8, 0.9], [0.1, 0.4, 0.9, 0.92], [0.1, 0.3, 0.5, 0.6]]}
    num = 0
    for reg, runs in curves.items():
        for seed, val in enumerate(runs):
            write_curve(make_job(root, num, [f"regularizer={reg}", f"seed={seed}"], summary()), val, val)
            num += 1
    spec = "epochs_to(val_acc>=0.9)"
    table = build_table(load_sweep(root), metrics=[spec], baseline="regularizer=none")
    l2 = table.rows[1]
    assert l2.cells[spec].values == [3, 2] and l2.cells[spec].not_reached == 1
    assert l2.comparison.test == "welch"  # seeds {0, 1} reached, the baseline's {0, 1, 2}: no pairing
    assert l2.comparison.p == pytest.approx(sp.ttest_ind([3, 2], [2, 1, 3], equal_var=False).pvalue)
    text = render(table, "markdown")
    assert "(1/3 not reached)" in text
    assert "epochs to val_acc>=90%: mean, interval and tests over the runs that reached the threshold" in text
