"""Random search: seeded sampling of log-uniform, uniform, integer and choice ranges, and its table."""
import csv
import json
import math
import subprocess
import sys

import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser

from trainlab.errors import ConfigError
from trainlab.sweep.cli import write_sweep_report
from trainlab.sweep.search import format_float, plan_sweep, read_search_file, write_search_file

SPACE = ["optimizer.lr=tag(log,interval(1e-4,1e-1))", "regularizer.dropout.p=interval(0,0.5)",
         "arch.width=int(interval(16,32))", "arch.depth=tag(log,int(interval(1,64)))", "activation=relu,tanh,elu",
         "trainer.epochs=3"]


def plan(overrides, n_trials=None, seed=0):
    return plan_sweep(OverridesParser.create().parse_overrides(overrides), n_trials, seed)


def values(jobs, key):
    return [dict(o.split("=", 1) for o in job)[key] for job in jobs]


def test_same_seed_same_trials_and_a_different_seed_different_ones():
    first, again, other = plan(SPACE, 20, seed=7), plan(SPACE, 20, seed=7), plan(SPACE, 20, seed=8)
    assert first.jobs == again.jobs
    assert values(first.jobs, "optimizer.lr") != values(other.jobs, "optimizer.lr")
    assert plan(SPACE, 25, seed=7).jobs[:20] == first.jobs  # more trials later only append jobs
    assert len(first.jobs) == 20 and all(job[-1] == "trainer.epochs=3" for job in first.jobs)


def test_each_range_kind_samples_inside_its_range():
    jobs = plan(SPACE, 400, seed=1).jobs
    lrs = [float(v) for v in values(jobs, "optimizer.lr")]
    assert all(1e-4 <= v <= 1e-1 for v in lrs)
    # log-uniform: about a third of the draws in each decade
    per_decade = [sum(lo <= v < lo * 10 for v in lrs) for lo in (1e-4, 1e-3, 1e-2)]
    assert all(90 < n < 180 for n in per_decade), per_decade
    ps = [float(v) for v in values(jobs, "regularizer.dropout.p")]
    assert all(0 <= v <= 0.5 for v in ps) and 0.2 < sum(ps) / len(ps) < 0.3
    widths = [int(v) for v in values(jobs, "arch.width")]  # integers, both ends included
    assert set(widths) == set(range(16, 33))
    depths = [int(v) for v in values(jobs, "arch.depth")]  # log-uniform integers favour the small end
    assert min(depths) == 1 and max(depths) <= 64 and sum(d <= 8 for d in depths) > sum(d > 8 for d in depths)
    assert set(values(jobs, "activation")) == {"relu", "tanh", "elu"}


def test_seeds_stay_a_grid_inside_each_trial():
    jobs = plan(["optimizer.lr=tag(log,interval(1e-4,1e-1))", "seed=0,1,2"], 4).jobs
    assert len(jobs) == 12
    assert values(jobs, "seed") == ["0", "1", "2"] * 4
    lrs = values(jobs, "optimizer.lr")
    assert all(lrs[i] == lrs[i - i % 3] for i in range(12)) and len(set(lrs)) == 4


def test_grid_without_ranges_and_search_settings_errors():
    assert plan(["a=1,2", "b=x,y"]).jobs == [["a=1", "b=x"], ["a=1", "b=y"], ["a=2", "b=x"], ["a=2", "b=y"]]
    assert len(plan(["a=1,2,3"], n_trials=5).jobs) == 5  # n_trials turns a list into uniform picks
    bad = [
        (["optimizer.lr=interval(0.1,0.01)"], 3, "low < high"),
        (["optimizer.lr=tag(log,interval(0,1))"], 3, "log-scale interval with low > 0"),
        (["optimizer.lr=tag(exp,interval(1,2))"], 3, "unknown tags"),
        (["optimizer.lr=interval(0.1,1)"], None, "hydra.sweeper.n_trials=None is not valid"),
        (["seed=interval(0,5)"], 3, "cannot be sampled"),
    ]
    for overrides, n_trials, message in bad:
        with pytest.raises(ConfigError, match=message):
            plan(overrides, n_trials)
    with pytest.raises(ConfigError, match="hydra.sweeper.seed"):
        plan(["a=interval(0,1)"], 3, seed=-1)


def test_sampled_floats_read_back_as_floats():
    assert format_float(1.0) == "1.0" and format_float(0.000123456) == "0.0001235" and format_float(2.5e-7) == "2.5e-07"
    assert isinstance(yaml.safe_load(format_float(3.0)), float)


def make_trial(sweep, num, lr, acc):
    job = sweep / f"{num}_optimizer.lr={lr}"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"optimizer.lr={lr}"]))
    (job / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"job": {"num": num}}}))
    (job / "summary.json").write_text(json.dumps({"status": "completed", "best": {"val_acc": acc}}))


def test_table_sorts_trials_and_warns_at_the_edge_of_the_recorded_range(tmp_path):
    searched = plan(["optimizer.lr=tag(log,interval(1e-4,1))"], 3)
    write_search_file(tmp_path, searched)
    assert read_search_file(tmp_path) == {"optimizer.lr": (1e-4, 1.0, True)}
    for num, (lr, acc) in enumerate([("0.001", 0.80), ("0.6", 0.95), ("0.01", 0.90)]):
        make_trial(tmp_path, num, lr, acc)
    text = write_sweep_report(tmp_path).read_text()
    rows = [line.split(" | ")[0] for line in text.splitlines()[2:5]]
    assert rows == ["| 0.6", "| 0.01", "| 0.001"]  # best first
    assert "optimizer.lr=0.6, in the upper 10% of the searched range [0.0001, 1] (log scale)" in text
    (tmp_path / "search.yaml").write_text("ranges: [broken")
    assert read_search_file(tmp_path) is None


def test_random_search_runs_end_to_end(tmp_path, cli_env):
    args = ["train", "-m", "optimizer.lr=tag(log,interval(1e-3,1e-2))", "arch.width=int(interval(8,32))",
            "hydra.sweeper.n_trials=2", "hydra.sweeper.seed=3", "trainer.epochs=1", "dataset.subset=100",
            "trainer.progress=off", "hydra.sweep.dir=search"]
    res = subprocess.run([sys.executable, "-m", "trainlab", *args], cwd=tmp_path, env=cli_env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    expected = plan(["optimizer.lr=tag(log,interval(1e-3,1e-2))", "arch.width=int(interval(8,32))",
                     "trainer.epochs=1", "dataset.subset=100", "trainer.progress=off"], 2, seed=3).jobs
    sweep = tmp_path / "search"
    for num, job in enumerate(expected):
        (folder,) = sweep.glob(f"{num}_*")
        assert yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text()) == job
        lr = float(dict(o.split("=") for o in job)["optimizer.lr"])
        assert json.loads((folder / "summary.json").read_text())["status"] == "completed"
        assert math.isclose(yaml.safe_load((folder / ".hydra" / "config.yaml").read_text())["optimizer"]["lr"], lr)
    assert yaml.safe_load((sweep / "search.yaml").read_text())["ranges"]["arch.width"] == {
        "low": 8.0, "high": 32.0, "log": False}
    header = (sweep / "table.md").read_text().splitlines()[0]
    assert header.startswith("| optimizer.lr | arch.width | best val acc (%) |")
    # table.png: the objective against each searched parameter, from table.csv's numbers
    from trainlab.sweep.table_figure import read_plotted

    rows = list(csv.DictReader((sweep / "table.csv").open()))
    plotted = {p["param"]: p for p in read_plotted(sweep / "table.png")["panels"]}
    assert plotted["optimizer.lr"]["log"] is True and plotted["arch.width"]["log"] is False
    for key, panel in plotted.items():
        assert [(p["x"], p["y"]) for p in panel["points"]] == \
            [(float(r[key]), float(r["best.val_acc_mean"])) for r in rows]


def test_table_of_a_coarse_and_a_fine_search_judges_edges_on_the_widest_range(tmp_path, capsys):
    from trainlab.sweep.cli import table_main

    coarse, fine = tmp_path / "coarse", tmp_path / "fine"
    for num, (lr, acc) in enumerate([("0.0001", 0.7), ("0.5", 0.8)]):
        make_trial(coarse, num, lr, acc)
    for num, (lr, acc) in enumerate([("0.09", 0.95), ("0.02", 0.9)]):
        make_trial(fine, num, lr, acc)
    write_search_file(coarse, plan(["optimizer.lr=tag(log,interval(1e-5,1))"], 2))
    write_search_file(fine, plan(["optimizer.lr=tag(log,interval(1e-2,1e-1))"], 2))
    assert table_main([str(coarse), str(fine), "--no-figure"]) == 0
    # 0.09 is at the upper edge of the fine range but central in the combined [1e-5, 1]
    assert "searched range" not in capsys.readouterr().err
    assert table_main([str(fine), "--no-figure"]) == 0
    assert "optimizer.lr=0.09, in the upper 10% of the searched range [0.01, 0.1] (log scale)" in capsys.readouterr().err
