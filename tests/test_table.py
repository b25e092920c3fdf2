"""`trainlab table`: sweep folders built by hand become tables, figures and warnings."""
import csv
import io
import json
import math

import pytest
import yaml

from trainlab.errors import ConfigError
from trainlab.sweep.aggregate import build_table
from trainlab.sweep.cli import table_main, write_sweep_report
from trainlab.sweep.render import render
from trainlab.sweep.runs import load_sweep
from trainlab.sweep.search_table import edge_warnings, infer_ranges


def summary(val_acc=0.9, test_acc=0.88, train_loss=0.1, epochs=10, wall=5.0, status="completed"):
    return {
        "status": status,
        "best": {"epoch": epochs, "step": 100 * epochs, "val_loss": 0.3, "val_acc": val_acc},
        "final": {"epoch": epochs, "step": 100 * epochs, "train_loss": train_loss, "train_acc": 0.95,
                  "val_loss": 0.35, "val_acc": val_acc, "lr": 0.01},
        "test": {"loss": 0.4, "acc": test_acc},
        "epochs_run": epochs, "wall_time_s": wall, "error": None, "diagnosis": [], "seed": 0,
    }


def failed_summary(status="failed"):
    return {"status": status, "best": None, "final": None, "test": None, "epochs_run": 1,
            "wall_time_s": 0.5, "error": "RuntimeError: boom", "diagnosis": [], "seed": 0}


def make_job(sweep, num, overrides, result=None, curve=None, choices=None, extra_column=None):
    """One job folder as Hydra and the engine leave it; `result` None = no summary.json."""
    job = sweep / f"{num}_{','.join(overrides)}"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(list(overrides)))
    values = dict(o.split("=", 1) for o in overrides)
    config = {"seed": int(values.get("seed", 0)), "dataset": {"cv": {"fold": 0, "folds": 1}},
              "optimizer": {"lr": 0.01}}
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    hydra = {"hydra": {"job": {"num": num}, "runtime": {"choices": choices or {}},
                       "overrides": {"task": list(overrides)}}}
    (job / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(hydra))
    if result is not None:
        (job / "summary.json").write_text(json.dumps(result))
    if curve is not None:
        header = "step,epoch,lr,train_loss,train_penalty,train_acc,val_loss,val_acc,time_s"
        header += f",{extra_column}" if extra_column else ""
        lines = [header]
        for epoch, (acc, loss) in enumerate(curve, start=1):
            extra = f",{epoch * 1.5}" if extra_column else ""
            lines.append(f"{epoch * 100},{epoch},0.01,{loss},0.0,{acc},{loss},{acc},{epoch}{extra}")
        (job / "metrics.csv").write_text("\n".join(lines) + "\n")
    return job


# best.val_acc per (activation, norm) over seeds 0, 1, 2
GRID = {
    ("relu", "none"): [0.90, 0.92, 0.94],
    ("relu", "batchnorm"): [0.95, 0.96, 0.97],
    ("tanh", "none"): [0.80, 0.83, 0.89],
    ("tanh", "batchnorm"): [0.85, 0.86, 0.87],
}


@pytest.fixture
def grid_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    num = 0
    for (act, norm), accs in GRID.items():
        for seed, acc in enumerate(accs):
            curve = [(acc - 0.1, 0.6), (acc - 0.02 * seed, 0.4), (acc, 0.3)]
            make_job(sweep, num, [f"activation={act}", f"norm={norm}", f"seed={seed}"],
                     summary(val_acc=acc, test_acc=acc - 0.01, train_loss=0.1 + seed * 0.05, wall=10 + seed),
                     curve=curve, choices={"activation": act, "norm": norm})
            num += 1
    return sweep


def cells(table, spec="best.val_acc"):
    return {row.label: row.cells[spec] for row in table.rows}


def test_two_factors_three_seeds_give_mean_and_sample_std(grid_sweep):
    table = build_table(load_sweep(grid_sweep))
    assert table.keys == ["activation", "norm"]
    assert [r.label for r in table.rows] == [
        "activation=relu, norm=none", "activation=relu, norm=batchnorm",
        "activation=tanh, norm=none", "activation=tanh, norm=batchnorm",
    ]
    acc = cells(table)
    assert acc["activation=relu, norm=none"].mean == pytest.approx(0.92, abs=1e-12)
    assert acc["activation=relu, norm=none"].std == pytest.approx(0.02, abs=1e-12)
    # sample std (ddof=1): sqrt((0.04² + 0.01² + 0.05²) / 2) = sqrt(0.0021)
    assert acc["activation=tanh, norm=none"].mean == pytest.approx(0.84, abs=1e-12)
    assert acc["activation=tanh, norm=none"].std == pytest.approx(0.0458257569, abs=1e-9)
    loss = cells(table, "final.train_loss")["activation=relu, norm=none"]
    assert (loss.mean, loss.std) == pytest.approx((0.15, 0.05))
    assert cells(table, "test.acc")["activation=relu, norm=batchnorm"].mean == pytest.approx(0.95)
    assert cells(table, "wall_time_s")["activation=tanh, norm=batchnorm"].mean == pytest.approx(11.0)
    assert all(row.n == 3 for row in table.rows)
    markdown = render(table, "markdown")
    # result columns get their 95% interval; costs (epochs, wall time) keep mean ± std
    assert ("| relu | none | 92.00 ± 2.00 [87.03, 96.97] | 91.00 ± 2.00 [86.03, 95.97] | 0.1500 ± 0.0500 "
            "[0.0258, 0.2742] | 10 ± 0 | 11.0 ± 1.0 | 3 |") in markdown
    assert "84.00 ± 4.58" in markdown


def test_failed_diverged_and_missing_jobs_are_shown_not_crashed(tmp_path):
    sweep = tmp_path / "sweep"
    make_job(sweep, 0, ["optimizer.lr=1.0", "seed=0"], failed_summary())
    make_job(sweep, 1, ["optimizer.lr=1.0", "seed=1"], failed_summary())
    make_job(sweep, 2, ["optimizer.lr=0.1", "seed=0"], summary(val_acc=0.90))
    make_job(sweep, 3, ["optimizer.lr=0.1", "seed=1"], summary(val_acc=0.94))
    make_job(sweep, 4, ["optimizer.lr=0.1", "seed=2"], failed_summary("diverged"))
    make_job(sweep, 5, ["optimizer.lr=0.01", "seed=0"], summary(val_acc=0.80))
    make_job(sweep, 6, ["optimizer.lr=0.01", "seed=1"], None)  # crashed before writing a summary
    corrupt = make_job(sweep, 7, ["optimizer.lr=0.01", "seed=2"], None)
    (corrupt / "summary.json").write_text('{"status": "compl')  # killed mid-write
    make_job(sweep, 8, ["optimizer.lr=0.001", "seed=0"], failed_summary())
    make_job(sweep, 9, ["optimizer.lr=0.001", "seed=1"], None)

    table = build_table(load_sweep(sweep))
    text = {row.label: row for row in table.rows}
    lines = render(table, "markdown").splitlines()
    assert "| 1.0 | failed 2/2 | failed 2/2 | failed 2/2 | failed 2/2 | failed 2/2 | 0 |  |" in lines
    assert text["optimizer.lr=0.1"].note() == "(1 diverged)"
    assert cells(table)["optimizer.lr=0.1"].mean == pytest.approx(0.92)
    assert text["optimizer.lr=0.01"].note() == "(2 missing)"
    assert text["optimizer.lr=0.01"].n == 1
    assert text["optimizer.lr=0.001"].status_text() == "failed 1/2, missing 1/2"
    assert any("summary.json unreadable" in w and corrupt.name in w for w in table.warnings)
    rows = list(csv.DictReader(io.StringIO(render(table, "csv"))))
    assert [(r["optimizer.lr"], r["n"], r["failed"], r["diverged"], r["missing"]) for r in rows] == [
        ("1.0", "0", "2", "0", "0"), ("0.1", "2", "0", "1", "0"),
        ("0.01", "1", "0", "0", "2"), ("0.001", "0", "1", "0", "1"),
    ]
    assert rows[0]["best.val_acc_mean"] == ""


def test_single_configuration_and_damaged_files(tmp_path):
    sweep = tmp_path / "sweep"
    for seed, acc in enumerate([0.90, 0.91, 0.95]):
        job = make_job(sweep, seed, [f"seed={seed}"], summary(val_acc=acc), curve=[(0.5, 1.0), (acc, 0.9)])
    (job / ".hydra" / "hydra.yaml").write_text("hydra: [unclosed")
    with open(job / "metrics.csv", "a") as f:
        f.write("300,3,0.01,0.2")  # the half-written line of a killed job
    make_job(sweep, 3, ["seed=3"], {"status": None})
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    (sweep / "table.md").write_text("an old report\n")

    records = load_sweep(sweep)
    assert [r.job for r in records] == [0, 1, 3, None]  # unreadable job number goes last
    assert records[-1].overrides == {"seed": "2"}  # hydra.yaml is broken, overrides.yaml is fine
    assert records[-1].curve("val_acc") == ([1.0, 2.0], [0.5, 0.95])
    table = build_table(records)
    assert table.keys == [] and [r.label for r in table.rows] == ["all jobs"]
    acc = cells(table)["all jobs"]
    assert (acc.n, acc.mean, acc.std) == (3, pytest.approx(0.92), pytest.approx(math.sqrt(0.0007)))
    assert table.rows[0].note() == "(1 missing)"
    (damaged,) = table.warnings  # three completed seeds: no spread warning
    assert "3_seed=3: summary.json has no status" in damaged and "hydra.yaml unreadable" in damaged
    assert render(table, "markdown").splitlines()[2].startswith("| all jobs | 92.00 ± 2.65 [85.43, 98.57] |")


def test_seeds_and_cv_folds_are_collapsed(tmp_path):
    sweep = tmp_path / "sweep"
    num = 0
    for lr, base in (("0.1", 0.9), ("0.01", 0.8)):
        for seed in (0, 1):
            for fold in (0, 1, 2):
                acc = base + 0.01 * fold + 0.001 * seed
                make_job(sweep, num, [f"optimizer.lr={lr}", f"seed={seed}", f"dataset.cv.fold={fold}"],
                         summary(val_acc=acc))
                num += 1
    table = build_table(load_sweep(sweep))
    assert table.keys == ["optimizer.lr"]
    assert [row.n for row in table.rows] == [6, 6]
    values = [0.9 + 0.01 * f + 0.001 * s for s in (0, 1) for f in (0, 1, 2)]
    mean = sum(values) / 6
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / 5)
    assert cells(table)["optimizer.lr=0.1"].mean == pytest.approx(0.9105, abs=1e-12)
    assert cells(table)["optimizer.lr=0.1"].std == pytest.approx(std, abs=1e-12)


def test_by_groups_explicitly_and_averages_the_rest(grid_sweep):
    table = build_table(load_sweep(grid_sweep), by=["activation"])
    assert table.keys == ["activation"]
    acc = cells(table)
    assert [row.n for row in table.rows] == [6, 6]
    assert acc["activation=relu"].mean == pytest.approx(0.94)
    assert acc["activation=tanh"].mean == pytest.approx(0.85)
    by_seed = build_table(load_sweep(grid_sweep), by=["seed"])
    assert [r.label for r in by_seed.rows] == ["seed=0", "seed=1", "seed=2"]
    assert cells(by_seed)["seed=0"].mean == pytest.approx((0.90 + 0.95 + 0.80 + 0.85) / 4)
    with pytest.raises(ConfigError, match=r"--by='colour'.*activation, norm, seed"):
        build_table(load_sweep(grid_sweep), by=["colour"])


def test_baseline_difference(tmp_path, grid_sweep):
    table = build_table(load_sweep(grid_sweep), baseline="activation=relu,norm=none")
    deltas = {row.label: row.delta for row in table.rows}
    assert deltas["activation=relu, norm=none"] == pytest.approx(0.0)
    assert deltas["activation=relu, norm=batchnorm"] == pytest.approx(0.04)
    assert deltas["activation=tanh, norm=none"] == pytest.approx(-0.08)
    markdown = render(table, "markdown")
    assert "Δ best val acc vs baseline (pp)" in markdown.splitlines()[0]
    assert "| +4.00 [+1.52, +6.48] |" in markdown and "| -8.00 [-14.57, -1.43] |" in markdown
    assert "| baseline |" in markdown
    rows = list(csv.DictReader(io.StringIO(render(table, "csv"))))
    assert float(rows[2]["delta_best.val_acc"]) == pytest.approx(-0.08)
    listed = tmp_path / "listed"
    for num, (reg, acc) in enumerate([("[l2,dropout]", 0.9), ("none", 0.85)]):
        make_job(listed, num, [f"regularizer={reg}", "seed=0"], summary(val_acc=acc))
    table = build_table(load_sweep(listed), baseline="regularizer=[l2,dropout]")
    assert [row.delta for row in table.rows] == [0.0, pytest.approx(-0.05)]
    with pytest.raises(ConfigError, match="matches 2 rows"):
        build_table(load_sweep(grid_sweep), baseline="activation=relu")
    with pytest.raises(ConfigError, match="matches no row"):
        build_table(load_sweep(grid_sweep), baseline="activation=gelu,norm=none")


def test_sort_is_descending_for_accuracy_and_ascending_for_loss(grid_sweep):
    records = load_sweep(grid_sweep)
    by_acc = build_table(records, sort="best.val_acc")
    assert [r.label for r in by_acc.rows] == [
        "activation=relu, norm=batchnorm", "activation=relu, norm=none",
        "activation=tanh, norm=batchnorm", "activation=tanh, norm=none",
    ]
    by_time = build_table(records, metrics=["best.val_acc"], by=["seed"], sort="wall_time_s")
    assert [r.label for r in by_time.rows] == ["seed=0", "seed=1", "seed=2"]
    assert [m.spec for m in by_time.metrics] == ["best.val_acc", "wall_time_s"]
    by_loss = build_table(records, by=["seed"], sort="metrics:val_loss")
    assert [r.cells["metrics:val_loss"].mean for r in by_loss.rows] == [0.3, 0.3, 0.3]


def test_every_format_renders(grid_sweep):
    table = build_table(load_sweep(grid_sweep), metrics=["best.val_acc", "final.train_loss"])
    markdown = render(table, "markdown").splitlines()
    assert markdown[0] == "| activation | norm | best val acc (%) | final train loss | n | notes |"
    assert markdown[8].startswith("- best on best val acc (%): activation=relu, norm=batchnorm (96.00 ± 1.00)")
    assert markdown[1] == "| :-- | :-- | --: | --: | --: | :-- |"
    rows = list(csv.DictReader(io.StringIO(render(table, "csv"))))
    assert float(rows[2]["best.val_acc_mean"]) == pytest.approx(0.84, abs=1e-12)
    assert float(rows[2]["best.val_acc_std"]) == pytest.approx(math.sqrt(0.0021), abs=1e-12)
    assert rows[0]["activation"] == "relu" and rows[0]["n"] == "3"
    latex = render(table, "latex")
    assert "\\begin{tabular}{llrrrl}" in latex and "\\end{tabular}" in latex
    assert "92.00 $\\pm$ 2.00 [87.03, 96.97]" in latex and "best val acc (\\%)" in latex
    assert "\\multicolumn{6}{p{\\linewidth}}{\\footnotesize best on best val acc (\\%)" in latex
    assert "(none when n $<$ 2)" in latex
    terminal = render(table, "terminal")
    assert "best val acc (%)" in terminal and "96.00 ± 1.00" in terminal


def test_metrics_csv_column_is_its_last_value(tmp_path):
    sweep = tmp_path / "sweep"
    make_job(sweep, 0, ["norm=none", "seed=0"], summary(), curve=[(0.5, 1.0), (0.7, 0.8)], extra_column="grad_norm")
    make_job(sweep, 1, ["norm=batchnorm", "seed=0"], summary(), curve=[(0.5, 1.0)] * 4, extra_column="grad_norm")
    table = build_table(load_sweep(sweep), metrics=["metrics:grad_norm", "metrics:val_acc"])
    assert [r.cells["metrics:grad_norm"].mean for r in table.rows] == [3.0, 6.0]
    assert [r.cells["metrics:val_acc"].mean for r in table.rows] == [0.7, 0.5]
    with pytest.raises(ConfigError, match=r"--metric='metrics:gradnorm'.*grad_norm"):
        build_table(load_sweep(sweep), metrics=["metrics:gradnorm"])


def test_few_seeds_and_overlap_warnings(tmp_path, grid_sweep):
    # grid: 3 seeds per row, and the winner (96 ± 1) is clear of the runner-up (92 ± 2)
    assert build_table(load_sweep(grid_sweep)).warnings == []

    two_seeds = tmp_path / "two"
    for num, (act, acc) in enumerate([("relu", 0.95), ("relu", 0.97), ("tanh", 0.80), ("tanh", 0.82)]):
        make_job(two_seeds, num, [f"activation={act}", f"seed={num % 2}"], summary(val_acc=acc))
    warnings = build_table(load_sweep(two_seeds)).warnings
    assert len(warnings) == 1
    assert "fewer than 3 seeds: spreads are unreliable" in warnings[0] and "activation=tanh (n=2)" in warnings[0]

    close = tmp_path / "close"
    for num, (act, acc) in enumerate([("relu", a) for a in (0.90, 0.92, 0.94)] + [("tanh", a) for a in (0.89, 0.91, 0.93)]):
        make_job(close, num, [f"activation={act}", f"seed={num % 3}"], summary(val_acc=acc))
    warnings = build_table(load_sweep(close)).warnings
    assert len(warnings) == 1
    # the paired differences are all +1 pp (no spread, the paired t is undefined): Welch's test decides
    assert ("best row (activation=relu: 92.00 ± 2.00) is not distinguishable from the runner-up "
            "(activation=tanh: 91.00 ± 2.00): Δ +1.00 pp [-3.53, +5.53], Welch's t-test, p = 0.57") in warnings[0]


def random_search(sweep, lrs, best_lr):
    for num, lr in enumerate(lrs):
        acc = 0.9 if lr == best_lr else 0.8 - 0.01 * num
        make_job(sweep, num, [f"optimizer.lr={lr}", f"optimizer.weight_decay={1e-5 * (num + 1)}"],
                 summary(val_acc=acc))
    return load_sweep(sweep)


def test_edge_warning_for_best_value_at_range_edge(tmp_path):
    lrs = [0.0002, 0.0007, 0.002, 0.004, 0.009, 0.03, 0.08]
    at_edge = random_search(tmp_path / "edge", lrs, best_lr=0.08)
    ranges = {"optimizer.lr": (1e-4, 0.1, True)}
    (warning,) = edge_warnings(at_edge, ranges)
    assert "optimizer.lr=0.08" in warning and "upper 10%" in warning and "search range is probably wrong" in warning
    # on a linear [0, 1] range the same 0.08 lies in the lower 10% instead
    (warning,) = edge_warnings(at_edge, {"optimizer.lr": (0.0, 1.0, False)})
    assert "lower 10%" in warning

    central = random_search(tmp_path / "central", lrs, best_lr=0.004)
    assert edge_warnings(central, ranges) == []
    # inferred: lr spans 2.6 decades (log), weight decay 7 linear values; the
    # best job (num 3) sits mid-range in both
    assert infer_ranges(central) == {
        "optimizer.lr": (0.0002, 0.08, True), "optimizer.weight_decay": (1e-5, pytest.approx(7e-5), False),
    }
    assert edge_warnings(central) == []
    inferred = edge_warnings(at_edge)  # best is job 6: the largest lr and weight decay
    assert len(inferred) == 2 and all("upper 10%" in w for w in inferred)


def test_figure_and_files_are_written(grid_sweep, capsys):
    assert table_main([str(grid_sweep)]) == 0
    out = capsys.readouterr()
    assert "92.00 ± 2.00" in out.out and "wrote table.md, table.csv, curves.png" in out.err
    assert (grid_sweep / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (grid_sweep / "table.md").read_text().startswith("| activation | norm | best val acc (%) |")
    rows = list(csv.DictReader((grid_sweep / "table.csv").open()))
    assert len(rows) == 4 and float(rows[1]["best.val_acc_mean"]) == pytest.approx(0.96)

    other = grid_sweep.parent / "report"
    assert table_main([str(grid_sweep), "--format", "csv", "--no-figure", "--out", str(other)]) == 0
    assert capsys.readouterr().out.startswith("activation,norm,n,jobs,")
    assert sorted(p.name for p in other.iterdir()) == ["table.csv", "table.md"]

    (grid_sweep / "curves.png").unlink()
    assert write_sweep_report(grid_sweep) == grid_sweep / "table.md"
    assert (grid_sweep / "curves.png").exists()


def test_two_sweep_folders_fill_missing_factors_from_the_config(tmp_path, capsys):
    first, second = tmp_path / "a", tmp_path / "b"
    for seed in range(3):
        make_job(first, seed, ["norm=batchnorm", f"seed={seed}"], summary(val_acc=0.9), choices={"norm": "batchnorm"})
        # this sweep never overrode norm: its value comes from hydra's group choices
        make_job(second, seed, [f"seed={seed}"], summary(val_acc=0.8), choices={"norm": "none"})
    table = build_table(load_sweep(first) + load_sweep(second))
    assert [r.label for r in table.rows] == ["norm=batchnorm", "norm=none"]
    assert table_main([str(first), str(second), "--format", "markdown", "--no-figure"]) == 0
    assert "| none | 80.00 ± 0.00 [80.00, 80.00] |" in capsys.readouterr().out


@pytest.mark.parametrize("args, names", [
    (["{tmp}/nowhere"], ["SWEEP_DIR=", "nowhere", "no such folder"]),
    (["{tmp}/empty"], ["SWEEP_DIR=", "empty", "no job folders"]),
    (["{sweep}", "--metric", "best.val_accuracy"], ["--metric='best.val_accuracy'", "best.val_acc", "metrics:<column>"]),
    (["{sweep}", "--by", "colour"], ["--by='colour'", "activation"]),
    (["{sweep}", "--sort", "speed"], ["--sort='speed'", "wall_time_s"]),
    (["{sweep}", "--baseline", "activation"], ["--baseline='activation'", "key=value"]),
    (["{sweep}", "--format", "html"], ["--format", "'html'", "markdown"]),
    ([], ["SWEEP_DIR"]),
])
def test_bad_input_is_one_line_and_code_2(tmp_path, grid_sweep, capsys, args, names):
    (tmp_path / "empty").mkdir()
    argv = [a.format(tmp=tmp_path, sweep=grid_sweep) for a in args]
    assert table_main(argv) == 2
    out = capsys.readouterr()
    assert out.out == ""
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("trainlab table: ")
    for name in names:
        assert name in lines[0]
    assert not (grid_sweep / "table.md").exists()


def test_latex_format_also_saves_table_tex(grid_sweep, capsys):
    out = grid_sweep.parent / "latex"
    assert table_main([str(grid_sweep), "--format", "latex", "--no-figure", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == ["table.csv", "table.md", "table.tex"]
    assert (out / "table.tex").read_text() == printed.out and "\\begin{tabular}" in printed.out
    assert "table.tex" in printed.err


def test_edge_warnings_skip_jobs_that_never_reached_a_threshold(tmp_path):
    """`trainlab table SWEEP --metric 'epochs_to(val_acc>=90)'` on a sweep where no job got there raised
    a TypeError (math.isnan on the 'not reached' marker) instead of printing the table."""
    sweep = tmp_path / "sweep"
    for num, lr in enumerate([0.001, 0.01, 0.1]):
        make_job(sweep, num, [f"optimizer.lr={lr}"], summary(val_acc=0.5), curve=[(0.3, 1.0), (0.5, 0.8)])
    records = load_sweep(sweep)
    assert edge_warnings(records, {"optimizer.lr": (1e-3, 0.1, True)}, metric="epochs_to(val_acc>=90)") == []
    # a job that did reach it is still ranked
    make_job(sweep, 3, ["optimizer.lr=0.09"], summary(val_acc=0.95), curve=[(0.5, 1.0), (0.95, 0.3)])
    (warning,) = edge_warnings(load_sweep(sweep), {"optimizer.lr": (1e-3, 0.1, True)}, metric="epochs_to(val_acc>=90)")
    assert "optimizer.lr=0.09" in warning


def test_a_job_named_twice_counts_once(tmp_path, grid_sweep, capsys):
    """`table S S`, `S S/` and a second sweep whose job folders are links to S's: n stays 3 per row
    (it doubled, the std shrank and the few-seeds warning vanished)."""
    linked = tmp_path / "linked"
    linked.mkdir()
    for job in sorted(grid_sweep.iterdir())[:3]:
        (linked / job.name).symlink_to(job, target_is_directory=True)
    for dirs in ([grid_sweep, grid_sweep], [grid_sweep, f"{grid_sweep}/"], [grid_sweep, linked]):
        assert table_main([str(d) for d in dirs] + ["--format", "csv", "--no-figure", "--out", str(tmp_path)]) == 0
        rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
        assert [int(r["n"]) for r in rows] == [3, 3, 3, 3]
        assert float(rows[0]["best.val_acc_std"]) == pytest.approx(0.02)
    from trainlab.sweep.runs import load_sweeps

    assert len(load_sweeps([grid_sweep, linked, grid_sweep])) == 12


def test_a_table_of_several_sweeps_leaves_their_own_tables_alone(tmp_path, capsys):
    """`table A B` prints the combined table; A's table.md stays A's; --out writes the combined one."""
    first, second = tmp_path / "a", tmp_path / "b"
    for seed in range(3):
        make_job(first, seed, ["norm=batchnorm", f"seed={seed}"], summary(val_acc=0.9), choices={"norm": "batchnorm"})
        make_job(second, seed, ["norm=none", f"seed={seed}"], summary(val_acc=0.8), choices={"norm": "none"})
    assert table_main([str(first), "--no-figure"]) == 0
    own = (first / "table.md").read_text()
    capsys.readouterr()
    assert table_main([str(first), str(second), "--format", "markdown"]) == 0
    out = capsys.readouterr()
    assert "| none | 80.00 ± 0.00 [80.00, 80.00] |" in out.out and "printed only" in out.err and "--out" in out.err
    assert (first / "table.md").read_text() == own and not (second / "table.md").exists()
    assert sorted(p.name for p in first.iterdir() if p.is_file()) == ["table.csv", "table.md"]
    assert table_main([str(first), str(second), "--no-figure", "--out", str(tmp_path / "both")]) == 0
    assert "| none |" in (tmp_path / "both" / "table.md").read_text()
    assert table_main([str(first), f"{first}/", "--no-figure"]) == 0  # one folder, twice: its own table
    assert "printed only" not in capsys.readouterr().err


def preset_sweep(sweep, lr: str, baseline: str = "norm=none,optimizer.lr=0.05"):
    """`-m experiment=batchnorm_lr optimizer.lr=LR`: the preset's lr axis narrowed to one value."""
    num = 0
    for norm, acc in (("none", 0.8), ("batchnorm", 0.9)):
        for seed in range(3):
            make_job(sweep, num, [f"norm={norm}", f"optimizer.lr={lr}", f"seed={seed}"],
                     summary(val_acc=acc + 0.01 * seed), choices={"norm": norm})
            num += 1
    table = {"metrics": ["best.val_acc"], "baseline": baseline}
    (sweep / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {"sweeper": {"table": table}}}))
    return sweep


def test_a_preset_narrowed_past_its_baseline_falls_back_to_the_first_row(tmp_path, capsys):
    sweep = preset_sweep(tmp_path / "bn", "2.0")
    assert write_sweep_report(sweep, figure=False) == sweep / "table.md"  # the end of the sweep
    written = (sweep / "table.md").read_text()
    assert "| none | 81.00 ± 1.00 [78.52, 83.48] | baseline |" in written and "| batchnorm | 91.00 ± 1.00 [88.52, 93.48] | +10.00 [+7.73, +12.27] |" in written
    assert "norm=none,optimizer.lr=0.05 does not pick one row of this sweep" in written and "first row, norm=none" in written
    assert table_main([str(sweep), "--no-figure", "--format", "markdown"]) == 0
    out = capsys.readouterr()
    assert "| batchnorm | 91.00 ± 1.00 [88.52, 93.48] | +10.00 [+7.73, +12.27] |" in out.out and "first row, norm=none" in out.err
    # an explicit --baseline that matches no row is still refused
    assert table_main([str(sweep), "--no-figure", "--baseline", "norm=none,optimizer.lr=0.05"]) == 2


def test_a_preset_narrowed_to_its_baseline_value_keeps_its_baseline_row(tmp_path, capsys):
    sweep = preset_sweep(tmp_path / "bn", "5e-2", baseline="norm=batchnorm,optimizer.lr=0.05")
    assert table_main([str(sweep), "--no-figure", "--format", "markdown"]) == 0
    out = capsys.readouterr()
    assert "| batchnorm | 91.00 ± 1.00 [88.52, 93.48] | baseline |" in out.out and "| none | 81.00 ± 1.00 [78.52, 83.48] | -10.00 [-12.27, -7.73] |" in out.out
    assert "does not pick" not in out.err


def test_a_preset_with_an_added_factor_takes_the_first_of_its_baseline_rows(tmp_path, capsys):
    """`-m experiment=batchnorm_lr activation=relu,tanh`: the preset's baseline matches two rows."""
    sweep = tmp_path / "bn"
    for num, (act, norm) in enumerate([("relu", "none"), ("relu", "batchnorm"), ("tanh", "none")]):
        make_job(sweep, num, [f"activation={act}", f"norm={norm}", "optimizer.lr=0.05"],
                 summary(val_acc=0.8 + 0.05 * num), choices={"norm": norm})
    table = {"metrics": ["best.val_acc"], "baseline": "norm=none,optimizer.lr=0.05"}
    (sweep / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {"sweeper": {"table": table}}}))
    assert table_main([str(sweep), "--no-figure", "--format", "markdown"]) == 0
    out = capsys.readouterr()
    assert "| relu | none | 80.00 | baseline |" in out.out and "| tanh | none | 90.00 | ≈ +10.00 |" in out.out
    assert "first row, activation=relu, norm=none" in out.err
