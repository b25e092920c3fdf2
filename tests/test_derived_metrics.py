"""trainlab table's derived metrics, on hand-built metrics.csv files: gap, epochs_to/steps_to (with
"not reached" shown and counted), auc, best/final of any column; default columns; diagnosis notes."""
import pytest

from test_table import make_job, summary
from trainlab.errors import ConfigError
from trainlab.sweep.aggregate import build_table
from trainlab.sweep.render import render
from trainlab.sweep.runs import load_sweep

HEADER = "step,epoch,lr,train_loss,train_penalty,train_acc,val_loss,val_acc,train_eval_loss,train_eval_acc,time_s"


def write_curve(job, val_accs, train_eval_accs):
    lines = [HEADER]
    for epoch, (val, seen) in enumerate(zip(val_accs, train_eval_accs)):
        running = ",," if epoch == 0 else f"1.0,0.0,{seen - 0.05}"  # the step-0 row has no running numbers
        lines.append(f"{epoch * 10},{epoch},0.01,{running},0.5,{val},0.4,{seen},{epoch}")
    (job / "metrics.csv").write_text("\n".join(lines) + "\n")


@pytest.fixture
def sweep(tmp_path):
    """regularizer=none learns fast and overfits; regularizer=l2 is slower and reaches 0.9 in 2 of 3 seeds."""
    root = tmp_path / "sweep"
    curves = {
        "none": [([0.1, 0.8, 0.9, 0.9], [0.1, 0.9, 1.0, 1.0])] * 3,
        "l2": [([0.1, 0.5, 0.8, 0.9], [0.1, 0.5, 0.85, 0.95]), ([0.1, 0.4, 0.7, 0.92], [0.1, 0.4, 0.7, 0.95]),
               ([0.1, 0.3, 0.5, 0.6], [0.1, 0.3, 0.5, 0.62])],
    }
    num = 0
    for reg, runs in curves.items():
        for seed, (val, seen) in enumerate(runs):
            result = summary(val_acc=max(val))
            result["diagnosis"] = [{"kind": "overfitting"}] if reg == "none" else []
            if reg == "l2" and seed == 2:
                result["diagnosis"] = [{"kind": "not_learning"}, {"kind": "not_learning"}]
            job = make_job(root, num, [f"regularizer={reg}", f"seed={seed}"], result, choices={"regularizer": reg})
            write_curve(job, val, seen)
            num += 1
    return root


def cell(table, spec, label):
    return next(r for r in table.rows if r.label == label).cells[spec]


def test_gap_reach_auc_best_final(sweep):
    specs = ["gap", "epochs_to(val_acc>=90)", "steps_to(val_acc>=0.9)", "auc(val_acc)", "best(train_eval_acc)",
             "final(val_loss)", "epochs_to(val_loss<=0.1)"]
    table = build_table(load_sweep(sweep), specs)
    assert cell(table, "gap", "regularizer=none").mean == pytest.approx(0.1)
    assert cell(table, "gap", "regularizer=l2").values == pytest.approx([0.05, 0.03, 0.02])
    reach = cell(table, "epochs_to(val_acc>=90)", "regularizer=l2")
    assert reach.values == [3, 3] and reach.not_reached == 1  # counted, not dropped
    assert cell(table, "epochs_to(val_acc>=90)", "regularizer=none").mean == 2
    assert cell(table, "steps_to(val_acc>=0.9)", "regularizer=none").mean == 20
    assert cell(table, "auc(val_acc)", "regularizer=none").mean == pytest.approx(0.675)
    assert cell(table, "best(train_eval_acc)", "regularizer=l2").values == pytest.approx([0.95, 0.95, 0.62])
    assert cell(table, "final(val_loss)", "regularizer=l2").mean == pytest.approx(0.5)
    never = cell(table, "epochs_to(val_loss<=0.1)", "regularizer=none")
    assert never.values == [] and never.not_reached == 3
    text = render(table, "markdown")
    assert "3 ± 0 [3, 3] (1/3 not reached)" in text and "not reached 3/3" in text
    assert "gap train−val (pp)" in text and "epochs to val_acc>=90%" in text
    csv_text = render(table, "csv")
    assert "epochs_to(val_acc>=90)_not_reached" in csv_text.splitlines()[0]
    # smaller gaps and earlier arrivals rank first
    assert build_table(load_sweep(sweep), ["gap"], sort="gap").rows[0].label == "regularizer=l2"


def test_default_columns_follow_the_sweep_and_notes_count_diagnoses(sweep):
    table = build_table(load_sweep(sweep))
    specs = [m.spec for m in table.metrics]
    assert "gap" in specs  # a swept regularizer: its lesson is the gap
    notes = {r.label: r.note() for r in table.rows}
    assert notes["regularizer=none"] == "overfitting 3/3"
    assert notes["regularizer=l2"] == "not_learning 1/3"  # each label once per job


def test_ema_and_tta_columns_when_the_jobs_report_them(tmp_path):
    root = tmp_path / "s"
    for seed in range(2):
        result = summary()
        result["test"] |= {"ema_acc": 0.91, "tta_acc": 0.93}
        make_job(root, seed, ["trainer.ema.decay=0.99", f"seed={seed}"], result)
    specs = [m.spec for m in build_table(load_sweep(root)).metrics]
    assert "test.ema_acc" in specs and "test.tta_acc" in specs and "test.polyak_acc" not in specs


@pytest.mark.parametrize("spec", ["epochs_to(val_acc=0.9)", "auc(val_accuracy)", "gapp(val_acc)"])
def test_bad_derived_metric_names_the_syntax(sweep, spec):
    with pytest.raises(ConfigError) as err:
        build_table(load_sweep(sweep), [spec])
    assert "epochs_to(<column>>=X)" in str(err.value)


def test_a_reach_metric_first_with_jobs_that_never_reach_it_gives_a_table(sweep, capsys):
    """The README's example: epochs_to first, one l2 seed never reaches 90% (the edge warnings once took
    its "not reached" for a number: TypeError)."""
    from trainlab.sweep.cli import table_main

    assert table_main([str(sweep), "--metric", "epochs_to(val_acc>=90)", "gap", "--no-figure"]) == 0
    out = capsys.readouterr()
    assert "(1/3 not reached)" in out.out and "Traceback" not in out.err


@pytest.mark.parametrize("spec, bad", [("epochs_to(val_acc>=1..2)", "'1..2'"), ("epochs_to(val_acc>=-)", "'-'"),
                                       ("steps_to(val_loss<=1e)", "'1e'"), ("epochs_to(val_acc>=)", "''")])
def test_a_malformed_threshold_is_one_line_and_exit_2(sweep, capsys, spec, bad):
    from trainlab.sweep.cli import table_main

    for flag in ("--metric", "--sort"):
        assert table_main([str(sweep), flag, spec, "--no-figure"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"{flag}='{spec}'" in err[0] and f"threshold {bad} is not a number" in err[0]
    assert not (sweep / "table.md").exists()


@pytest.mark.parametrize("spec, threshold", [("epochs_to(val_acc>=90%)", 0.9), ("steps_to(val_loss<=1e-3)", 1e-3),
                                             ("epochs_to(val_loss< .5)", 0.5), ("steps_to(val_loss<=+2.)", 2.0)])
def test_well_formed_thresholds_still_parse(spec, threshold):
    from trainlab.sweep.derived import parse

    assert parse(spec).threshold == pytest.approx(threshold)
