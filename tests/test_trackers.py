"""logger=: TensorBoard, MLflow and W&B (offline) get what metrics.csv gets, read back;
a resumed run continues its MLflow run; a missing package is a one-line error; the default
path imports none of the trackers' packages."""
import csv
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import compose_cfg, run_tiny
from trainlab.config import validate
from trainlab.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_default_run_imports_no_tracker_package(tmp_path):
    code = ("import sys; from tests.conftest import run_tiny; "
            f"s = run_tiny({str(tmp_path / 'run')!r}, []); assert s['status'] == 'completed'; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorboard', 'mlflow', 'wandb') "
            "or m.startswith('torch.utils.tensorboard')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_missing_tracker_package_is_one_line_error_naming_the_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    with pytest.raises(ConfigError) as err:
        validate(compose_cfg(["logger=[tensorboard,mlflow]"]))
    assert err.value.key == "logger" and "trainlab[trackers]" in str(err.value) and "\n" not in str(err.value)


def test_missing_wandb_is_one_line_error_naming_the_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(ConfigError) as err:
        validate(compose_cfg(["logger=wandb"]))
    assert "wandb" in str(err.value) and "trainlab[trackers]" in str(err.value) and "\n" not in str(err.value)


def _csv(run_dir: Path) -> list[dict]:
    with open(run_dir / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_tensorboard_and_mlflow_receive_what_metrics_csv_receives(tmp_path):
    pytest.importorskip("tensorboard")
    mlflow = pytest.importorskip("mlflow")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    run_dir, uri = tmp_path / "run", f"sqlite:///{tmp_path}/mlflow.db"
    summary = run_tiny(run_dir, ["logger=[tensorboard,mlflow]", f"logger.mlflow.tracking_uri={uri}",
                                 "logger.mlflow.experiment=tiny", "trainer.epochs=2"], figures=True)
    rows = _csv(run_dir)
    steps = [int(r["step"]) for r in rows]
    assert summary["status"] == "completed" and len(rows) == 3  # the step-0 evaluation and 2 epochs

    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    assert [e.step for e in events.Scalars("val_acc")] == steps
    assert [e.value for e in events.Scalars("val_acc")] == pytest.approx([float(r["val_acc"]) for r in rows])
    assert {"train_loss", "lr", "val_loss", "train_acc"} <= set(events.Tags()["scalars"])
    assert len(events.Scalars("train_step_loss")) == summary["steps"]  # folded in at each evaluation
    assert {"curves", "diagnostics"} <= set(events.Tags()["images"])
    start = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hp = plugin_data_pb2.HParamsPluginData.FromString(start).session_start_info.hparams
    assert hp["optimizer"].string_value == "adam" and hp["status"].string_value == "completed"
    assert events.Scalars("hparam/test_acc")[0].value == pytest.approx(summary["test"]["acc"])

    mlflow.set_tracking_uri(uri)
    (run,) = mlflow.search_runs(experiment_names=["tiny"], output_format="list")
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    assert run.data.params["optimizer.name"] == "adam" and run.data.params["trainer.epochs"] == "2"
    history = mlflow.MlflowClient(uri).get_metric_history(run.info.run_id, "val_acc")
    assert [(m.step, m.value) for m in history] == [(s, pytest.approx(float(r["val_acc"]))) for s, r in zip(steps, rows)]
    artifacts = {a.path for a in mlflow.MlflowClient(uri).list_artifacts(run.info.run_id)}
    assert {"summary.json", "curves.png"} <= artifacts


def test_resumed_run_continues_its_mlflow_run(tmp_path):
    pytest.importorskip("tensorboard")
    mlflow = pytest.importorskip("mlflow")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    overrides = ["logger=[mlflow,tensorboard]", f"logger.mlflow.tracking_uri={uri}", "trainer.epochs=3"]
    part = run_tiny(tmp_path / "run", [*overrides, "trainer.stop_after=1"])
    assert part["status"] == "interrupted"
    (first,) = _runs(mlflow, uri)
    assert first.info.status == "KILLED"
    done = run_tiny(tmp_path / "run", [*overrides, "resume=true"])
    assert done["status"] == "completed"
    (run,) = _runs(mlflow, uri)  # the same run, not a second one
    assert run.info.run_id == first.info.run_id and run.info.status == "FINISHED"
    steps = [int(r["step"]) for r in _csv(tmp_path / "run")]
    history = mlflow.MlflowClient(uri).get_metric_history(run.info.run_id, "val_acc")
    assert [m.step for m in history] == steps == [0, 3, 6, 9]
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("val_acc")] == steps


def _runs(mlflow, uri):
    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs(experiment_names=["trainlab"], output_format="list")


def test_sweep_is_one_mlflow_experiment_in_the_default_store(tmp_path, cli_env):
    """A real multirun from the CLI: the default store outputs/mlflow.db (from the working
    directory), one experiment named after the sweep folder, one MLflow run per job."""
    mlflow = pytest.importorskip("mlflow")
    res = subprocess.run([sys.executable, "-m", "trainlab", "train", "-m", "logger=mlflow", "seed=0,1",
                          "dataset.subset=100", "trainer.epochs=1", "trainer.progress=off", "trainer.threads=1"],
                         cwd=tmp_path, env={**cli_env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    (sweep,) = (tmp_path / "outputs" / "sweeps").iterdir()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/outputs/mlflow.db")
    runs = mlflow.search_runs(experiment_names=[sweep.name], output_format="list")
    assert sorted(r.data.params["seed"] for r in runs) == ["0", "1"]
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert {r.info.run_name for r in runs} == {p.name for p in sweep.iterdir() if (p / "summary.json").is_file()}


def test_a_failed_run_ends_its_mlflow_run_as_failed(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    from trainlab.engine.loop import Loop

    def broken(self, *a, **k):
        raise RuntimeError("evaluation broke")

    monkeypatch.setattr(Loop, "evaluate", broken)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    with pytest.raises(RuntimeError, match="evaluation broke"):
        run_tiny(tmp_path / "run", ["logger=mlflow", f"logger.mlflow.tracking_uri={uri}"])
    (run,) = _runs(mlflow, uri)
    assert run.info.status == "FAILED" and run.data.tags["trainlab.status"] == "failed"


@pytest.mark.slow
def test_tensorboard_in_a_headless_browser_shows_the_runs(tmp_path):
    """scripts/browse_check.py: `tensorboard --logdir` on localhost, opened in headless Chromium;
    `mlflow ui` too when the full mlflow package (.[ui]) is installed."""
    import shutil

    pytest.importorskip("tensorboard")
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        pytest.skip("needs Debian's chromium package")
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "browse_check.py"), "--out", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr[-2000:]
    assert "run 1_optimizer=momentum: shown" in res.stdout and (tmp_path / "tensorboard.png").stat().st_size > 10_000
    assert "HParams: first column optimizer (differs: True)" in res.stdout
    if "mlflow ui: skipped" not in res.stdout:  # the full mlflow package (.[ui]) is installed
        assert "mlflow ui: run 1_optimizer=momentum: shown" in res.stdout and "metric val_acc" in res.stdout
        assert "MISSING" not in res.stdout and "metric test_acc" in res.stdout and "tag tags = browse: shown" in res.stdout
        assert (tmp_path / "mlflow.png").stat().st_size > 10_000


def _wandb_records(path: Path):
    """The protobuf Records of an offline run's .wandb file. wandb reads runs back only from a
    server (wandb.Api), and the Python reader of this file it once had (wandb.sdk.internal.datastore)
    went with the move to its Go core, so this decodes the format: a 7-byte header (b":W&B", 0xBEE1,
    version), then LevelDB log framing (32 KiB blocks of chunks, each behind a crc/length/type
    header; types 1 full, 2 first, 3 middle, 4 last) around wandb.proto.wandb_internal_pb2.Record."""
    import struct

    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert struct.unpack("<4sHB", data[:7])[:2] == (b":W&B", 0xBEE1)
    pos, record = 7, b""
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # a block's tail too short for a chunk header is padding
            pos += 32768 - pos % 32768
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        record, pos = record + data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind in (1, 4):
            yield wandb_internal_pb2.Record.FromString(record)
            record = b""


@pytest.mark.slow  # ~15 s (wandb starts its own service process); the option's config and refusal are in the default suite
def test_wandb_offline_run_in_the_run_folder_holds_what_metrics_csv_holds(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    import json

    monkeypatch.setenv("WANDB_MODE", "online")  # the config's mode (offline by default) wins
    run_dir = tmp_path / "run"
    summary = run_tiny(run_dir, ["logger=wandb", "trainer.epochs=2"], figures=True)
    assert summary["status"] == "completed"
    import wandb

    # wandb-core writes the .wandb file from its own process: run.finish() may return before it is
    # flushed (1 in 4 tries here); teardown waits for it, as wandb's atexit hook does at process end
    wandb.teardown()
    (offline,) = (run_dir / "wandb").glob("offline-run-*")
    run_id = json.loads((run_dir / "wandb_run.json").read_text())["run_id"]
    records = list(_wandb_records(offline / f"run-{run_id}.wandb"))
    kinds = [r.WhichOneof("record_type") for r in records]
    run = next(r.run for r in records if r.HasField("run"))  # wandb-core may write it again on updates
    config = {u.key: json.loads(u.value_json) for u in run.config.update}
    assert run.run_id == run_id and run.display_name == "run" and config["optimizer"]["name"] == "adam"

    history = [{(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in r.history.item}
               for r in records if r.HasField("history")]
    rows = _csv(run_dir)
    assert [(h["_step"], h["val_acc"]) for h in history if "val_acc" in h] == \
        [(int(r["step"]), pytest.approx(float(r["val_acc"]))) for r in rows]
    assert sum("train_step_loss" in h for h in history) == summary["steps"]  # folded in at each evaluation
    final = {}
    for r in records:
        if r.HasField("summary"):
            final |= {(u.key or "/".join(u.nested_key)): json.loads(u.value_json) for u in r.summary.update}
    assert final["status"] == "completed" and final["test_acc"] == pytest.approx(summary["test"]["acc"])
    assert {p.name.split("_")[0] for p in (offline / "files" / "media" / "images").iterdir()} >= \
        {"curves", "diagnostics"}
    assert kinds[-1] == "exit" and records[-1].exit.exit_code == 0


RACE = """
import sys, time
from pathlib import Path
from types import SimpleNamespace
import mlflow.tracking
from trainlab.engine.tracker_common import Context
from trainlab.engine.tracker_mlflow import MlflowTracker

root, name = Path(sys.argv[1]), sys.argv[2]
(root / name).mkdir()
(root / f"{name}.ready").touch()
while not (root / "go").exists():  # every process has imported mlflow: they open the store together
    time.sleep(0.005)
cfg = SimpleNamespace(tracking_uri=f"sqlite:///{root}/outputs/mlflow.db", experiment=name, artifacts=False,
                      checkpoints=False)
MlflowTracker(cfg, Context(root / name, {"seed": 0}, {}, resumed=False, step=0, sweep=None)).close("completed", {}, [])
"""


@pytest.mark.slow  # two processes import mlflow and create a store: ~45 s on a loaded 2-core machine; the lock's
# wiring is checked in the default suite below
def test_runs_starting_together_on_a_new_mlflow_store_all_succeed(tmp_path):
    """Two processes open a new outputs/mlflow.db at the same moment (two sweeps started together):
    MLflow's schema creation raced (`table ... already exists`, alembic's "expected to match one
    row") and the losers failed; the creation is now done by one process under a lock."""
    mlflow = pytest.importorskip("mlflow")
    names = ["m1", "m2"]
    procs = [subprocess.Popen([sys.executable, "-c", RACE, str(tmp_path), n], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for n in names]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"{n}.ready").exists() for n in names) and time.monotonic() < deadline:
        time.sleep(0.05)
    (tmp_path / "go").touch()
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-1500:] for o in outputs)
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/outputs/mlflow.db")
    for name in names:
        (run,) = client.search_runs([client.get_experiment_by_name(name).experiment_id])
        assert run.info.status == "FINISHED"


def test_the_mlflow_store_is_opened_under_its_lock(tmp_path, monkeypatch):
    """While MLflow opens a new SQLite store (and gets or creates the experiment) another process
    cannot take the lock file beside it; a tracking server URI takes no lock."""
    import errno
    import fcntl
    import os
    from types import SimpleNamespace

    import mlflow.tracking

    from trainlab.engine.tracker_common import Context
    from trainlab.engine.tracker_mlflow import MlflowTracker

    seen = []

    def locked(db: Path) -> bool:
        fd = os.open(db.with_name(f".{db.name}.lock"), os.O_RDWR)  # a second descriptor: its own flock
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return False
        except OSError as err:
            assert err.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
            return True
        finally:
            os.close(fd)

    class Client:
        def __init__(self, tracking_uri):
            self.uri = tracking_uri
            seen.append(("open", locked(db) if tracking_uri.startswith("sqlite") else None))

        def get_experiment_by_name(self, name):
            seen.append(("experiment", locked(db) if self.uri.startswith("sqlite") else None))

        def create_experiment(self, name, artifact_location=None):
            return "1"

        def create_run(self, exp_id, run_name, tags):
            return SimpleNamespace(info=SimpleNamespace(run_id="r"))

        def log_batch(self, *a, **k):
            pass

    monkeypatch.setattr(mlflow.tracking, "MlflowClient", Client)
    db = tmp_path / "outputs" / "mlflow.db"
    for uri, run in ((f"sqlite:///{db}", "a"), ("http://localhost:5000", "b")):
        (tmp_path / run).mkdir()
        MlflowTracker(SimpleNamespace(tracking_uri=uri, experiment=None, artifacts=False),
                      Context(tmp_path / run, {"seed": 0}, {}, resumed=False, step=0, sweep=None))
    assert seen == [("open", True), ("experiment", True), ("open", None), ("experiment", None)]
    assert not locked(db)  # released once the run is registered
