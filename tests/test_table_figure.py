"""table.png: drawn for a grid sweep, a random search and an Optuna search, from the numbers in table.csv
(the plotted values are read back from the PNG's metadata); a search's table and curves read as a search."""
import csv
import json

import pytest

from test_table import make_job, summary
from trainlab.sweep.cli import table_main, write_sweep_report
from trainlab.sweep.search import Plan, write_search_file
from trainlab.sweep.table_figure import read_plotted


def csv_rows(sweep):
    return list(csv.DictReader((sweep / "table.csv").open()))


def close(a, b):
    return a == pytest.approx(b, rel=1e-12, abs=1e-15)


def test_grid_forest_plot_is_drawn_from_the_table_numbers(tmp_path, capsys):
    sweep = tmp_path / "grid"
    num = 0
    for act, accs in (("relu", [0.90, 0.93, 0.91]), ("tanh", [0.80, 0.84, 0.81]), ("elu", [0.91, 0.92, 0.93])):
        for seed, acc in enumerate(accs):
            make_job(sweep, num, [f"activation={act}", f"seed={seed}"], summary(val_acc=acc, test_acc=acc - 0.02),
                     curve=[(acc - 0.1, 0.5), (acc, 0.3)])
            num += 1
    assert table_main([str(sweep), "--baseline", "activation=relu"]) == 0
    assert "table.png" in capsys.readouterr().err
    plotted = read_plotted(sweep / "table.png")
    assert plotted["kind"] == "forest"
    # best.val_acc, then the other result columns (test acc, final train loss) as small panels
    assert [p["metric"] for p in plotted["panels"]] == ["best.val_acc", "test.acc", "final.train_loss"]
    rows = csv_rows(sweep)
    for panel in plotted["panels"]:
        spec = panel["metric"]
        assert len(panel["rows"]) == len(rows)
        for drawn, row in zip(panel["rows"], rows):
            assert drawn["row"] == f"activation={row['activation']}"
            for key, column in (("mean", "mean"), ("low", "ci_low"), ("high", "ci_high")):
                assert close(drawn[key], float(row[f"{spec}_{column}"]))
    styles = [r["style"] for r in plotted["panels"][0]["rows"]]
    # tanh is 10 pp below relu on every seed; elu is within the noise of relu
    assert styles == ["baseline", "distinguishable", "not distinguishable"]
    assert [row["delta_best.val_acc_distinguishable"] for row in rows] == ["", "1", "0"]


def search_folder(root, trials):
    """A random search's folder: one job per trial (lr, width, acc, status)."""
    root.mkdir(parents=True)
    write_search_file(root, Plan(jobs=[], random=True, n_trials=len(trials), seed=0,
                                 searched={"optimizer.lr": (1e-4, 1e-1, True), "arch.width": (8.0, 64.0, False)}))
    for num, (lr, width, acc, status) in enumerate(trials):
        result = summary(val_acc=acc, test_acc=acc - 0.01)
        result["status"] = status
        curve = [(acc - 0.2 + 0.01 * num, 0.9), (acc, 0.5)]
        make_job(root, num, [f"optimizer.lr={lr}", f"arch.width={width}"], result, curve=curve)


TRIALS = [("0.0003", 12, 0.71, "completed"), ("0.02", 40, 0.93, "completed"), ("0.005", 25, 0.90, "completed"),
          ("0.08", 60, 0.55, "pruned"), ("0.0011", 33, 0.84, "completed"), ("0.04", 17, 0.91, "completed"),
          ("0.0002", 50, 0.62, "completed"), ("0.009", 9, 0.88, "completed")]


def test_random_search_picture_table_and_curves(tmp_path):
    sweep = tmp_path / "search"
    search_folder(sweep, TRIALS)
    text = write_sweep_report(sweep).read_text()
    assert "fewer than 3 seeds" not in text  # one seed per trial is what a search means
    assert "one run per trial" in text and "trials are ranked, not tested" in text
    plotted = read_plotted(sweep / "table.png")
    assert plotted["kind"] == "search" and plotted["metric"] == "best.val_acc"
    panels = {p["param"]: p for p in plotted["panels"]}
    assert panels["optimizer.lr"]["log"] is True and panels["arch.width"]["log"] is False
    rows = csv_rows(sweep)
    completed = [r for r in rows if r["best.val_acc_mean"]]
    for key, panel in panels.items():
        points = [p for p in panel["points"] if p["status"] == "completed"]
        assert len(points) == len(completed) == 7
        for point, row in zip(points, completed):  # both best first
            assert close(point["x"], float(row[key])) and close(point["y"], float(row["best.val_acc_mean"]))
        (pruned,) = [p for p in panel["points"] if p["status"] == "pruned"]
        assert close(pruned["y"], 0.55)
    assert [r["pruned"] for r in rows if not r["best.val_acc_mean"]] == ["1"]
    assert (sweep / "curves.png").is_file()


def test_search_curves_show_the_best_trials_only(tmp_path):
    from trainlab.sweep.aggregate import build_table
    from trainlab.sweep.runs import load_sweep
    from trainlab.sweep.search_table import best_trials

    search_folder(tmp_path / "s", TRIALS)
    table = build_table(load_sweep(tmp_path / "s"), search=True)
    best = best_trials(table)
    assert [r.values["optimizer.lr"] for r in best.rows] == ["0.02", "0.04", "0.005", "0.009", "0.0011"]
    assert len(table.rows) == 8  # the table itself keeps every trial


def test_optuna_folder_gets_its_picture_importances_and_best_trial(tmp_path):
    """An Optuna sweep folder as the sweeper leaves it (study database, trials file, search.yaml, one
    job per trial, one pruned), built without training: the table ends with Optuna's importances
    and the best trial, and table.png plots the objective per parameter with the pruned trial."""
    optuna = pytest.importorskip("optuna")
    from trainlab.sweep.optuna_search import default_storage, write_trials

    sweep = tmp_path / "opt"
    search_folder(sweep, TRIALS)
    study = optuna.create_study(study_name="opt", storage=default_storage(sweep), direction="maximize")
    space = {"optimizer.lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True),
             "arch.width": optuna.distributions.IntDistribution(8, 64)}
    entries = {}
    for num, (lr, width, acc, status) in enumerate(TRIALS):
        state = optuna.trial.TrialState.PRUNED if status == "pruned" else optuna.trial.TrialState.COMPLETE
        study.add_trial(optuna.trial.create_trial(params={"optimizer.lr": float(lr), "arch.width": width},
                                                  distributions=space, state=state,
                                                  value=acc if status == "completed" else None))
        entries[num] = {"storage": default_storage(sweep), "study": "opt", "trial_id": study.trials[-1]._trial_id}
    write_trials(sweep, entries)
    text = write_sweep_report(sweep).read_text()
    assert "fewer than 3 seeds" not in text
    importances = next(line for line in text.splitlines() if "hyperparameter importances" in line)
    assert "over 7 completed trials" in importances and "optimizer.lr" in importances and "arch.width" in importances
    assert "- best trial: #1, objective 0.93, optimizer.lr=0.02, arch.width=40" in text
    plotted = read_plotted(sweep / "table.png")
    statuses = [p["status"] for p in plotted["panels"][0]["points"]]
    assert plotted["kind"] == "search" and statuses.count("completed") == 7 and statuses.count("pruned") == 1


@pytest.mark.slow  # ~10 s on an idle machine: four tiny trainings
def test_optuna_search_gets_its_picture_importances_and_best_trial(tmp_path):
    optuna = pytest.importorskip("optuna")
    from conftest import train_in

    sweep = tmp_path / "sw"
    train_in(tmp_path, ["-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=4", "hydra.sweeper.pruner=none",
                        "optimizer.lr=tag(log,interval(1e-3,1e-1))", "arch.width=int(interval(8,32))",
                        "trainer.epochs=1", "dataset.subset=120", "trainer.batch_size=64", "trainer.progress=off",
                        "trainer.threads=1", "trainer.save_checkpoints=false", f"hydra.sweep.dir={sweep}"])
    text = (sweep / "table.md").read_text()
    assert "fewer than 3 seeds" not in text
    study = optuna.load_study(study_name="sw", storage=f"sqlite:///{sweep}/optuna.db")
    importances = next(line for line in text.splitlines() if "hyperparameter importances" in line)
    assert "PedAnovaImportanceEvaluator" in importances or "FanovaImportanceEvaluator" in importances
    assert "optimizer.lr" in importances and "arch.width" in importances
    best = study.best_trial
    assert f"best trial: #{best.number}, objective {best.value:.4g}, " in text
    assert f"arch.width={best.params['arch.width']}" in text
    plotted = read_plotted(sweep / "table.png")
    assert plotted["kind"] == "search" and {p["param"] for p in plotted["panels"]} == {"optimizer.lr", "arch.width"}
    lr = next(p for p in plotted["panels"] if p["param"] == "optimizer.lr")
    assert lr["log"] is True
    rows = {json.dumps([r["optimizer.lr"], r["arch.width"]]): float(r["best.val_acc_mean"]) for r in csv_rows(sweep)}
    assert sorted(p["y"] for p in lr["points"]) == pytest.approx(sorted(rows.values()), rel=1e-12)
    assert sorted(rows.values())[-1] == pytest.approx(best.value)
