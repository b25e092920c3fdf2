"""hydra/sweeper=optuna: a real CLI sweep on an SQLite study in the sweep folder; the pruner stops
bad trials (status `pruned` in summary.json, the study and the table); replicates stay a grid."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

ROOT = Path(__file__).resolve().parents[1]


def test_search_space_and_replicate_grid():
    pytest.importorskip("optuna")
    from trainlab.sweep.optuna_search import split_axes

    parsed = OverridesParser.create().parse_overrides(
        ["optimizer.lr=tag(log,interval(1e-4,1e-1))", "arch.width=int(interval(8,64))", "activation=relu,tanh",
         "seed=0,1,2", "trainer.epochs=2"])
    space, grid = split_axes(parsed)
    lr, width, act = space["optimizer.lr"], space["arch.width"], space["activation"]
    assert (lr.low, lr.high, lr.log) == (1e-4, 1e-1, True) and (width.low, width.high) == (8, 64)
    assert list(act.choices) == ["relu", "tanh"]
    assert grid == [[f"seed={s}", "trainer.epochs=2"] for s in (0, 1, 2)]  # each trial runs every seed


@pytest.mark.slow  # ~26 s of CLI sweeps; resume, pruning with replicates and a failed trial are tested in-process below
def test_optuna_sweep_learns_prunes_and_keeps_its_study(tmp_path, cli_env):
    optuna = pytest.importorskip("optuna")

    def run_sweep(*extra):
        res = subprocess.run([sys.executable, "-m", "trainlab", "train", "-m", "hydra/sweeper=optuna",
                              "hydra.sweeper.pruner_warmup=0", "optimizer.lr=tag(log,interval(1e-4,1e-1))",
                              "dataset.subset=200", "trainer.epochs=4", "trainer.progress=off", "trainer.threads=1",
                              "trainer.save_checkpoints=false", *extra],
                             cwd=tmp_path, env={**cli_env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                             timeout=300)
        assert res.returncode == 0, res.stderr[-2000:]

    run_sweep("hydra.sweeper.n_trials=8")
    (sweep,) = (tmp_path / "outputs" / "sweeps").iterdir()
    study = optuna.load_study(study_name=sweep.name, storage=f"sqlite:///{sweep}/optuna.db")
    trials = {t.number: t for t in study.trials}
    assert len(trials) == 8 and all(t.state.is_finished() for t in trials.values())
    statuses = {}
    for job in sweep.iterdir():
        if (job / "summary.json").is_file():
            statuses[int(job.name.split("_")[0])] = json.loads((job / "summary.json").read_text())["status"]
    assert sorted(statuses) == list(range(8))  # one job per trial, numbered by trial
    assert study.metric_names == ["best.val_acc"]  # optuna-dashboard's label for the objective
    assert all(p.name.split("_", 1)[1].startswith("lr=") and len(p.name.split("_", 1)[1]) <= 40
               for p in sweep.iterdir() if (p / "summary.json").is_file())  # named by the searched key
    for number, status in statuses.items():
        assert status == {"COMPLETE": "completed", "PRUNED": "pruned"}[trials[number].state.name]
    assert "pruned" in statuses.values()  # this seed's TPE draws reach trials the median pruner stops
    best = study.best_trial
    assert best.value == pytest.approx(json.loads(next(sweep.glob(f"{best.number}_*/summary.json")).read_text())
                                       ["best"]["val_acc"])
    assert "pruned 1/1" in (sweep / "table.md").read_text() and "optimizer.lr" in (sweep / "search.yaml").read_text()

    run_sweep("hydra.sweeper.n_trials=9", f"hydra.sweep.dir={sweep}")  # the same folder: the study continues
    study = optuna.load_study(study_name=sweep.name, storage=f"sqlite:///{sweep}/optuna.db")
    assert len(study.trials) == 9 and study.trials[8].params["optimizer.lr"] not in \
        [t.params["optimizer.lr"] for t in study.trials[:8]]
    assert len(list(sweep.glob("8_*/summary.json"))) == 1


def test_optuna_sweeper_without_optuna_is_one_line_error(monkeypatch, tmp_path):
    import importlib.util

    from trainlab.errors import ConfigError
    from trainlab.app.precheck import prepare

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "optuna" else real(name, *a))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        prepare(["-m", "hydra/sweeper=optuna", "optimizer.lr=interval(0.001,0.1)"])
    assert "trainlab[search]" in str(err.value) and "\n" not in str(err.value)


OPTUNA_TINY = ["dataset.subset=120", "trainer.batch_size=64", "trainer.progress=off", "trainer.threads=1",
               "trainer.save_checkpoints=false", "optimizer.lr=tag(log,interval(1e-6,1e-1))"]


def _sweep_statuses(sweep: Path) -> dict[int, str]:
    return {int(d.name.split("_")[0]): json.loads((d / "summary.json").read_text())["status"]
            for d in sweep.iterdir() if (d / "summary.json").is_file()}


def test_a_bad_trial_with_two_seeds_is_pruned_on_its_first_replicate(tmp_path):
    """Five finished trials at 90% set the median; the enqueued trial (lr=1e-6) stays near chance:
    its seed-0 job is pruned at its first evaluation, its seed-1 job right after its step-0 row."""
    optuna = pytest.importorskip("optuna")
    from conftest import train_in

    sweep = tmp_path / "sw"
    sweep.mkdir()
    study = optuna.create_study(study_name="sw", storage=f"sqlite:///{sweep}/optuna.db", direction="maximize")
    lr = optuna.distributions.FloatDistribution(1e-6, 1e-1, log=True)
    for _ in range(5):
        study.add_trial(optuna.trial.create_trial(params={"optimizer.lr": 0.01}, distributions={"optimizer.lr": lr},
                                                  value=0.9, intermediate_values={1: 0.9, 2: 0.9}))
    study.enqueue_trial({"optimizer.lr": 1e-6})
    train_in(tmp_path, ["-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=6", "hydra.sweeper.pruner_warmup=0",
                        "seed=0,1", "trainer.epochs=3", f"hydra.sweep.dir={sweep}", *OPTUNA_TINY])
    trial = optuna.load_study(study_name="sw", storage=f"sqlite:///{sweep}/optuna.db").trials[5]
    assert trial.state.name == "PRUNED" and list(trial.intermediate_values) == [1]  # the lead reported once
    assert _sweep_statuses(sweep) == {10: "pruned", 11: "pruned"}  # trial 5's two replicates
    follower = [r for r in (sweep.glob("11_*/metrics.csv"))][0].read_text().splitlines()
    assert len(follower) == 2  # header and the step-0 row: it did not train
    assert "pruned 2/2" in (sweep / "table.md").read_text()


def test_resume_sweep_finishes_the_open_trials_then_continues_the_study(tmp_path):
    """trainer.stop_after=1 leaves every job interrupted, so the trial stays RUNNING in the study;
    `trainlab resume-sweep` continues its jobs in their folders (from last.pt), tells the study
    the mean over the seeds, then asks a second trial (n_trials raised on its command line)."""
    optuna = pytest.importorskip("optuna")
    from conftest import train_in

    from trainlab.app.cli import main

    sweep = tmp_path / "sw"
    args = ["-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=1", "hydra.sweeper.pruner=none", "seed=0,1",
            "trainer.epochs=2", "trainer.stop_after=1", f"hydra.sweep.dir={sweep}", *OPTUNA_TINY]
    train_in(tmp_path, [a for a in args if a != "trainer.save_checkpoints=false"])
    study = optuna.load_study(study_name="sw", storage=f"sqlite:///{sweep}/optuna.db")
    assert [t.state.name for t in study.trials] == ["RUNNING"]
    assert set(_sweep_statuses(sweep).values()) == {"interrupted"}
    folders = sorted(p.name for p in sweep.iterdir() if p.is_dir())

    assert main(["resume-sweep", str(sweep), "hydra.sweeper.n_trials=2"]) == 0
    study = optuna.load_study(study_name="sw", storage=f"sqlite:///{sweep}/optuna.db")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "RUNNING"]  # trial 1 was stopped too
    assert _sweep_statuses(sweep) == {0: "completed", 1: "completed", 2: "interrupted", 3: "interrupted"}
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir())[:2] == folders  # the same folders
    jobs = sorted(p for p in sweep.iterdir() if p.name.startswith(("0_", "1_")))
    seeds = [json.loads((job / "summary.json").read_text()) for job in jobs]
    assert all("resumed from" in (job / "train.log").read_text() for job in jobs)
    assert [s["epochs_run"] for s in seeds] == [2, 2]
    assert study.trials[0].value == pytest.approx(sum(s["best"]["val_acc"] for s in seeds) / 2)


def test_resume_sweep_reruns_a_failed_trial_in_its_folder(tmp_path, monkeypatch):
    """A job that raised leaves its trial FAIL; resume-sweep runs the job again in its folder and
    the study gets the result as trial 1 (`retry_of` 0); n_trials=1 is then reached: nothing new."""
    optuna = pytest.importorskip("optuna")
    from conftest import train_in

    from trainlab.app.cli import main
    from trainlab.engine.loop import Loop

    real = Loop.evaluate
    monkeypatch.setattr(Loop, "evaluate", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("evaluation broke")))
    sweep = tmp_path / "sw"
    with pytest.raises(AssertionError):  # the sweep ends with exit code 1: a job failed
        train_in(tmp_path, ["-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=1", "trainer.epochs=1",
                            f"hydra.sweep.dir={sweep}", *OPTUNA_TINY])
    assert _sweep_statuses(sweep) == {0: "failed"}
    monkeypatch.setattr(Loop, "evaluate", real)
    assert main(["resume-sweep", str(sweep)]) == 0
    study = optuna.load_study(study_name="sw", storage=f"sqlite:///{sweep}/optuna.db")
    assert [(t.state.name, t.user_attrs.get("retry_of")) for t in study.trials] == [("FAIL", None), ("COMPLETE", 0)]
    assert study.trials[1].params == study.trials[0].params and _sweep_statuses(sweep) == {0: "completed"}
    assert study.trials[1].value == json.loads(next(sweep.glob("0_*/summary.json")).read_text())["best"]["val_acc"]


def test_a_failed_trial_is_retried_as_a_new_trial_that_replaces_it(tmp_path):
    """Optuna's finished trials are immutable: a FAIL trial's rerun enters the study as a copy with
    `retry_of`, which n_trials does not count twice, and the next resume leaves it alone."""
    optuna = pytest.importorskip("optuna")
    from trainlab.sweep.optuna_search import record_outcome, trials_counted, trials_to_finish, write_trials

    study = optuna.create_study(direction="maximize")
    lr = optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)
    trial = study.ask({"optimizer.lr": lr})
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    write_trials(tmp_path, {0: {"trial_id": trial._trial_id}, 1: {"trial_id": trial._trial_id}})
    (failed, numbers), = trials_to_finish(study, tmp_path)
    assert failed.number == 0 and numbers == [0, 1] and trials_counted(study, tmp_path) == 1
    record_outcome(study, failed, "complete", 0.75)
    retry = study.trials[1]
    assert (retry.state.name, retry.value, retry.params, retry.user_attrs) == \
        ("COMPLETE", 0.75, failed.params, {"retry_of": 0})
    assert trials_to_finish(study, tmp_path) == [] and trials_counted(study, tmp_path) == 1


def test_resuming_an_optuna_sweep_without_its_study_is_refused(tmp_path):
    """A fresh study would number its trials' jobs from 0 again, beside the folder's own jobs."""
    pytest.importorskip("optuna")
    from trainlab.errors import ConfigError
    from trainlab.app.precheck import prepare

    with pytest.raises(ConfigError) as err:
        prepare(["-m", "hydra/sweeper=optuna", "optimizer.lr=interval(0.001,0.1)", f"hydra.sweep.dir={tmp_path}",
                 "hydra.sweeper.resume=true"])
    assert "optuna.db" in str(err.value) and "\n" not in str(err.value)


def _trial_params(sweep: Path) -> list[dict]:
    import optuna

    return [t.params for t in optuna.load_study(study_name=sweep.name, storage=f"sqlite:///{sweep}/optuna.db").trials]


def test_a_search_stopped_and_resumed_asks_the_trials_the_uninterrupted_one_asks(tmp_path):
    """One search runs 3 trials at once; another stops after 1 and is resumed up to 3 with resume-sweep:
    the trials' values are the same, as they are for a search continued after a kill (a sampler seeded
    per trial number, optuna_search.trial_seed; it was re-seeded with seed + trials done)."""
    pytest.importorskip("optuna")
    from conftest import train_in

    from trainlab.app.cli import main

    args = ["-m", "hydra/sweeper=optuna", "hydra.sweeper.pruner=none", "trainer.epochs=1", "activation=relu,tanh",
            *OPTUNA_TINY]
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    train_in(tmp_path, [*args, "hydra.sweeper.n_trials=3", f"hydra.sweep.dir={whole}"])
    train_in(tmp_path, [*args, "hydra.sweeper.n_trials=1", f"hydra.sweep.dir={stopped}"])
    assert len(_trial_params(stopped)) == 1
    assert main(["resume-sweep", str(stopped), "hydra.sweeper.n_trials=3"]) == 0
    assert _trial_params(stopped) == _trial_params(whole)
    assert len({p["optimizer.lr"] for p in _trial_params(whole)}) == 3


def test_trial_seeds_depend_on_the_search_seed_and_the_trial_number():
    pytest.importorskip("optuna")
    from trainlab.sweep.optuna_search import trial_seed

    seeds = {(s, n): trial_seed(s, n) for s in range(3) for n in range(50)}
    assert len(set(seeds.values())) == len(seeds)  # seed 1's trial 0 is not seed 0's trial 1
    assert all(0 <= v < 2 ** 32 for v in seeds.values()) and trial_seed(0, 7) == seeds[0, 7]


def test_an_epochs_to_objective_not_reached_counts_one_past_the_budget_and_the_search_goes_on(tmp_path):
    """`epochs_to(val_loss<=0)` is never reached: each trial completes with trainer.epochs + 1 (no
    traceback, no trial left RUNNING), and the search asks its second trial."""
    optuna = pytest.importorskip("optuna")
    from conftest import train_in

    sweep = tmp_path / "sw"
    train_in(tmp_path, ["-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", "hydra.sweeper.pruner=none",
                        "hydra.sweeper.objective='epochs_to(val_loss<=0)'", "trainer.epochs=1",
                        f"hydra.sweep.dir={sweep}", *OPTUNA_TINY])
    study = optuna.load_study(study_name="sw", storage=f"sqlite:///{sweep}/optuna.db")
    assert [(t.state.name, t.value) for t in study.trials] == [("COMPLETE", 2.0), ("COMPLETE", 2.0)]
    assert study.direction.name == "MINIMIZE"


def test_a_trial_mixing_reached_and_not_reached_jobs_averages_them(tmp_path):
    """Reached at epoch 2 in one seed, never in a 3-epoch budget in the other (counted as 4): mean 3.
    steps_to counts the steps of the budget plus one (10 steps an epoch: 31)."""
    pytest.importorskip("optuna")
    import yaml
    from test_table import make_job, summary

    from trainlab.sweep.optuna_search import trial_value

    jobs = []
    for seed, accs in enumerate([(0.5, 0.95, 0.96), (0.5, 0.6, 0.7)]):
        job = make_job(tmp_path, seed, [f"seed={seed}"], summary(val_acc=max(accs)))
        (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"seed": seed, "trainer": {"epochs": 3}}))
        rows = [f"{10 * e},{e},{a}" for e, a in enumerate(accs, start=1)]
        (job / "metrics.csv").write_text("step,epoch,val_acc\n" + "\n".join(rows) + "\n")
        jobs.append(job)
    assert trial_value(jobs, "epochs_to(val_acc>=0.9)") == ("complete", 3.0)
    assert trial_value(jobs[1:], "steps_to(val_acc>=0.9)") == ("complete", 31.0)
