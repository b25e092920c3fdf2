"""A sweep as the tracker users see it (issue 29): job folders named `<num>_<swept keys>` (at most 40
characters, no constants), the same names in MLflow and TensorBoard, the swept key first among
TensorBoard's HParams columns, resume-sweep and the table still matching the jobs; the progress
display's lines (jobs done/total, failures, ETA)."""
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from trainlab.sweep.job_names import MAX_SHORT, short_name, swept_keys
from trainlab.sweep.progress import SweepProgress

ROOT = Path(__file__).resolve().parents[1]


def test_short_names_hold_only_the_swept_keys_and_stay_short():
    jobs = [["logger=tensorboard", f"optimizer={o}", "trainer.epochs=3", "trainer.threads=1", f"seed={s}"]
            for o in ("sgd", "adam") for s in (0, 1)]
    keys = swept_keys(jobs)
    assert keys == ["optimizer", "seed"]
    assert short_name(jobs[1], keys) == "optimizer=sgd,seed=1"
    long = ["regularizer=[l2,dropout]", "optimizer.lr=0.000123456789", "regularizer.l2.strength=0.00012345",
            "arch.widths=[512,256,128]"]
    name = short_name(long, swept_keys([long, [o + "9" for o in long]]))
    assert len(name) <= MAX_SHORT and name.startswith("regularizer=l2+dropout,lr=0.000123")
    assert all(c not in name for c in "[]/ '\"")
    assert swept_keys([["logger=mlflow", "optimizer=sgd"]]) == ["optimizer"]  # one job: its keys, not logger


@pytest.mark.slow  # a real 2-job sweep with two trackers, then resume-sweep: ~20 s idle, 80 s under load
def test_sweep_names_trackers_resume_and_table(tmp_path, cli_env):
    pytest.importorskip("tensorboard")
    mlflow = pytest.importorskip("mlflow")
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer
    from tensorboard.plugins.hparams import backend_context
    from tensorboard.plugins.hparams import metadata as hp_metadata

    sweep = tmp_path / "sweep"
    args = ["train", "-m", "optimizer=sgd,adam", "logger=[tensorboard,mlflow]", "trainer.threads=1", "trainer.epochs=1",
            "dataset.subset=100", "trainer.progress=off", f"hydra.sweep.dir={sweep}"]
    env = cli_env | {"TRAINLAB_SWEEP_PROGRESS_EVERY": "0", "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-m", "trainlab", *args], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=400)
    assert res.returncode == 0, res.stderr[-2000:]
    jobs = sorted(p.name for p in sweep.iterdir() if (p / "summary.json").is_file())
    assert jobs == ["0_optimizer=sgd", "1_optimizer=adam"]
    overrides = yaml.safe_load((sweep / "0_optimizer=sgd" / ".hydra" / "overrides.yaml").read_text())
    assert {"logger=[tensorboard,mlflow]", "trainer.threads=1", "optimizer=sgd"} <= set(overrides)
    # the plain progress lines (stdout is not a terminal here)
    assert "sweep: 2/2 jobs done, failed 0 · diverged 0, elapsed" in res.stdout

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/outputs/mlflow.db")
    runs = mlflow.search_runs(experiment_names=[sweep.name], output_format="list")
    assert sorted(r.info.run_name for r in runs) == jobs

    events = EventMultiplexer()
    events.AddRunsFromDirectory(str(sweep))
    events.Reload()
    # TensorBoard's own HParams backend: the columns it infers, the varied ones first (the UI ticks the first)
    hparams = backend_context.Context(_TBContext(events))._compute_hparam_infos(
        events.PluginRunToTagToContent(hp_metadata.PLUGIN_NAME))
    backend_context._sort_and_reduce_to_hparams_limit(exp := _experiment(hparams), 5)
    assert exp.hparam_infos[0].name == "optimizer" and exp.hparam_infos[0].differs
    assert {h.name for h in exp.hparam_infos[1:] if h.differs} <= {"status"}

    (sweep / "1_optimizer=adam" / "summary.json").unlink()  # as if its process had died: resume-sweep reruns it
    again = subprocess.run([sys.executable, "-m", "trainlab", "resume-sweep", str(sweep)], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=400)
    assert again.returncode == 0 and "1 of 2 jobs already have a result, 1 to run" in again.stdout, again.stderr
    assert sorted(p.name for p in sweep.iterdir() if (p / "summary.json").is_file()) == jobs  # same folders
    table = subprocess.run([sys.executable, "-m", "trainlab", "table", str(sweep), "--format", "csv", "--no-figure"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert table.returncode == 0 and "\nsgd,1,1," in table.stdout and "\nadam,1,1," in table.stdout


class _TBContext:
    """The part of TensorBoard's plugin context the HParams backend reads (the event multiplexer)."""

    def __init__(self, multiplexer):
        self.multiplexer, self.data_provider = multiplexer, None
        self.flags = None


def _experiment(hparams):
    from tensorboard.plugins.hparams import api_pb2

    return api_pb2.Experiment(hparam_infos=hparams)


def test_progress_lines_count_done_failed_and_diverged(tmp_path):
    out = io.StringIO()
    with SweepProgress(tmp_path, 4, mode="plain", every_s=0, stream=out) as progress:
        for num, status in enumerate(["completed", "failed", "diverged"]):
            (tmp_path / f"{num}_x").mkdir()
            (tmp_path / f"{num}_x" / "summary.json").write_text(json.dumps({"status": status}))
        deadline = time.monotonic() + 10
        while "3/4" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert progress.counts()["diverged"] == 1
    lines = out.getvalue().splitlines()
    assert lines[-1].startswith("sweep: 3/4 jobs done, failed 1 · diverged 1, elapsed 0:00:0")
    assert "ETA -:--:--" not in lines[-1]  # three jobs done: an estimate for the fourth


def test_progress_on_a_terminal_is_a_rich_row_that_the_jobs_bars_join(tmp_path, monkeypatch):
    from rich.console import Console

    from trainlab.engine import console as engine_console

    screen = Console(file=io.StringIO(), force_terminal=True, width=120, record=True)
    monkeypatch.setattr(engine_console, "_console", screen)
    with SweepProgress(tmp_path, 2, mode="rich", open_bar=engine_console._open_shared,
                       close_bar=engine_console._close_shared) as progress:
        (tmp_path / "0_x").mkdir()
        (tmp_path / "0_x" / "summary.json").write_text(json.dumps({"status": "diverged"}))
        with engine_console.Progress("rich", 10, 0) as job:  # the next job's bar: a row under the sweep's
            job.advance(4, info="val acc 50.0%")
            rows = {t.description: t for t in progress.bar.tasks}
            assert set(rows) == {"sweep", "train"} and rows["train"].completed == 4
            deadline = time.monotonic() + 10
            while rows["sweep"].completed != 1 and time.monotonic() < deadline:
                time.sleep(0.1)
        assert [t.description for t in progress.bar.tasks] == ["sweep"]  # the job's row goes with the job
    assert engine_console._shared is None
    text = screen.export_text()
    assert "sweep" in text and "1/2" in text and "failed 0 · diverged 1" in text and "ETA 0:00:0" in text
