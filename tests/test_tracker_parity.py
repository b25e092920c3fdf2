"""Tracker parity (issue 29): every tracker gets the best/final/test metrics, the chosen options
and `tags=[...]` as tags, and the git commit; summary.json holds the tags and the commit;
MLflow files artifacts as its server does (`<experiment_id>/<run_id>/artifacts`), checkpoints
included when asked; `trainlab table --where tags=T` keeps the tagged jobs. Read back from real
TensorBoard event files, a real MLflow SQLite store and a real W&B offline run."""
import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import compose_cfg, run_tiny
from trainlab.config import validate
from trainlab.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def _git(*args) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def test_tags_are_a_list_of_short_labels():
    assert validate(compose_cfg(["tags=[baseline,v2]"])).tags == ["baseline", "v2"]
    assert validate(compose_cfg(["tags=solo"])).tags == ["solo"]
    assert validate(compose_cfg([])).tags == []
    with pytest.raises(ConfigError) as err:
        validate(compose_cfg(["tags=[" + "x" * 65 + "]"]))
    assert err.value.key == "tags" and "\n" not in str(err.value)


def test_summary_and_trackers_get_results_options_tags_and_git(tmp_path):
    pytest.importorskip("tensorboard")
    mlflow = pytest.importorskip("mlflow")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata, plugin_data_pb2

    run_dir, uri = tmp_path / "run", f"sqlite:///{tmp_path}/mlflow.db"
    summary = run_tiny(run_dir, ["logger=[tensorboard,mlflow]", f"logger.mlflow.tracking_uri={uri}",
                                 "logger.mlflow.checkpoints=true", "tags=[baseline,v2]", "optimizer=sgd"])
    assert summary["status"] == "completed" and summary["tags"] == ["baseline", "v2"]
    commit = _git("rev-parse", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    assert summary["git"]["commit"] == commit and summary["git"]["dirty"] is dirty

    client = mlflow.MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("trainlab").experiment_id])
    metrics = run.data.metrics
    assert metrics["test_acc"] == pytest.approx(summary["test"]["acc"])
    assert metrics["best_val_acc"] == pytest.approx(summary["best"]["val_acc"])
    assert metrics["final_val_loss"] == pytest.approx(summary["final"]["val_loss"])
    tags = run.data.tags
    assert tags["optimizer"] == "sgd" and tags["activation"] == "relu" and tags["tags"] == "baseline,v2"
    assert tags["baseline"] == tags["v2"] == "true"
    assert tags["mlflow.source.git.commit"] == commit and tags["git_dirty"] == str(dirty).lower()
    assert tags["git_commit"] == commit
    assert tags["mlflow.source.name"] == "trainlab" and tags.get("mlflow.user")
    # MLflow's own layout: mlartifacts/<experiment_id>/<run_id>/artifacts, the checkpoints under checkpoints/
    artifacts = tmp_path / "mlartifacts" / run.info.experiment_id / run.info.run_id / "artifacts"
    assert run.info.artifact_uri == artifacts.as_uri()
    assert (artifacts / "summary.json").is_file()
    assert (artifacts / "checkpoints" / "best.pt").read_bytes() == (run_dir / "checkpoints" / "best.pt").read_bytes()

    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    content = events.PluginTagToContent(metadata.PLUGIN_NAME)
    # no experiment summary: TensorBoard infers the columns from all runs, the varied ones first
    assert metadata.EXPERIMENT_TAG not in content
    hp = plugin_data_pb2.HParamsPluginData.FromString(content[metadata.SESSION_START_INFO_TAG]).session_start_info.hparams
    assert hp["optimizer"].string_value == "sgd" and hp["tags"].string_value == "baseline,v2"
    assert hp["git_commit"].string_value == commit and hp["git_dirty"].string_value == str(dirty).lower()
    assert events.Scalars("hparam/test_acc")[0].value == pytest.approx(summary["test"]["acc"])


def test_a_failed_run_records_its_tags_and_commit(tmp_path, monkeypatch):
    from trainlab.engine.loop import Loop

    def broken(self, *a, **k):
        raise RuntimeError("evaluation broke")

    monkeypatch.setattr(Loop, "evaluate", broken)
    with pytest.raises(RuntimeError):
        run_tiny(tmp_path / "run", ["tags=[broken]"])
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["tags"] == ["broken"]
    assert summary["git"]["commit"] == _git("rev-parse", "HEAD")


def test_table_where_keeps_the_tagged_jobs(tmp_path, capsys):
    from tests.test_table import make_job, summary
    from trainlab.sweep.cli import table_main

    sweep = tmp_path / "sweep"
    for num, (opt, tags) in enumerate([("sgd", ["baseline"]), ("adam", ["v2"]), ("momentum", ["v2", "x"])]):
        make_job(sweep, num, [f"optimizer={opt}", "seed=0"], summary(val_acc=0.5 + num / 10) | {"tags": tags})
    assert table_main([str(sweep), "--where", "tags=v2", "--by", "optimizer", "--format", "csv", "--no-figure"]) == 0
    out = capsys.readouterr().out
    assert "adam" in out and "momentum" in out and "sgd" not in out
    assert table_main([str(sweep), "--where", "tags=v2", "--where", "optimizer=adam", "--by", "optimizer", "--format", "csv",
                       "--no-figure", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "adam" in out and "momentum" not in out
    assert table_main([str(sweep), "--where", "tags=nothing", "--no-figure"]) == 2
    assert "--where='tags=nothing' is not valid: no job of the 3 matches it" in capsys.readouterr().err


@pytest.mark.slow  # ~15 s: wandb starts its own service process
def test_wandb_offline_run_gets_tags_git_results_and_checkpoints(tmp_path):
    pytest.importorskip("wandb")
    import wandb

    from tests.test_trackers import _wandb_records

    run_dir = tmp_path / "run"
    summary = run_tiny(run_dir, ["logger=wandb", "logger.wandb.checkpoints=true", "tags=[baseline]"])
    wandb.teardown()  # wandb-core flushes the .wandb file from its own process (see test_trackers)
    (offline,) = (run_dir / "wandb").glob("offline-run-*")
    run_id = json.loads((run_dir / "wandb_run.json").read_text())["run_id"]
    records = list(_wandb_records(offline / f"run-{run_id}.wandb"))
    run = [r.run for r in records if r.HasField("run")][-1]
    assert list(run.tags)[:2] == ["baseline", "seed=0"] and "optimizer=adam" in run.tags
    assert run.git.commit == _git("rev-parse", "HEAD")
    config = {}
    for r in records:
        if r.HasField("config") or r.HasField("run"):
            for u in (r.config.update if r.HasField("config") else r.run.config.update):
                config[u.key] = json.loads(u.value_json)
    assert config["git"]["commit"] == summary["git"]["commit"] and config["tags"] == ["baseline"]
    final = {}
    for r in records:
        if r.HasField("summary"):
            final |= {(u.key or "/".join(u.nested_key)): json.loads(u.value_json) for u in r.summary.update}
    assert final["test_acc"] == pytest.approx(summary["test"]["acc"]) and "best_val_acc" in final
    artifacts = [r.artifact for r in records if r.HasField("artifact")]
    assert any(a.type == "model" and {"best.pt", "last.pt"} <= {m.path for m in a.manifest.contents}
               for a in artifacts)
