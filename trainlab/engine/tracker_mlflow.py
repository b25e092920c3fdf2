"""logger=mlflow: the run as an MLflow run: the flattened config as params, metrics per
evaluation with their step, and at the end the best/final/test metrics (so runs sort by test
accuracy in `mlflow ui`), the chosen options and `tags=` as tags, MLflow's own source tags
(user, git commit), summary.json, the figures and optionally the checkpoints as artifacts.

Artifacts land where MLflow's server puts them: `<artifact root>/<experiment_id>/<run_id>/artifacts`
(the root is `mlartifacts/` beside an SQLite database, as with `mlflow server`).
"""
from __future__ import annotations

import getpass
import json
import time
from pathlib import Path

from trainlab.engine.tracker_common import Context, final_metrics, flatten, run_tags

RUN_FILE = "mlflow_run.json"  # in the run folder: which MLflow run a resumed run continues


def _experiment_id(client, uri: str, name: str, artifact_root: str | None) -> str:
    """The id of experiment `name`, created when missing. With an SQLite store, MLflow's own store
    class creates it (given the artifact root, it files each experiment under its id, as its
    server does); the client alone would put every run's artifacts in one `./mlruns`."""
    experiment = client.get_experiment_by_name(name)
    if experiment:
        return experiment.experiment_id
    if artifact_root is None:
        return client.create_experiment(name)
    from mlflow.exceptions import MlflowException
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    try:
        return SqlAlchemyStore(uri, artifact_root).create_experiment(name)
    except MlflowException:  # another job of the sweep created it meanwhile
        return client.get_experiment_by_name(name).experiment_id


class MlflowTracker:
    name = "mlflow"

    def __init__(self, cfg, ctx: Context):
        from mlflow.tracking import MlflowClient

        from trainlab.engine.mlflow_store import store_lock

        self.cfg, self.ctx = cfg, ctx
        uri = cfg.tracking_uri
        artifacts = db = None
        if uri.startswith("sqlite:///"):  # a file store: create its folder, keep artifacts beside it
            db = Path(uri[len("sqlite:///"):]).absolute()
            db.parent.mkdir(parents=True, exist_ok=True)
            uri, artifacts = f"sqlite:///{db}", (db.parent / "mlartifacts").as_uri()
        with store_lock(db):  # one process at a time creates a new store's schema and an experiment
            self.client = MlflowClient(tracking_uri=uri)
            known = ctx.run_dir / RUN_FILE
            previous = json.loads(known.read_text()) if known.is_file() else None
            if previous and previous.get("tracking_uri") == uri:
                self.run_id = previous["run_id"]   # a resumed run continues its own MLflow run
                self.client.update_run(self.run_id, status="RUNNING")
                logged = self.client.get_run(self.run_id).data.params
            else:
                exp_id = _experiment_id(self.client, uri, cfg.experiment or ctx.sweep or "trainlab", artifacts)
                self.run_id = self.client.create_run(exp_id, run_name=ctx.run_dir.name, tags=self._tags()).info.run_id
                known.write_text(json.dumps({"tracking_uri": uri, "run_id": self.run_id}) + "\n")
                logged = {}
        from mlflow.entities import Param

        # params are immutable in MLflow: a resumed run adds the keys it did not log before
        params = [Param(k, str(v)[:6000]) for k, v in flatten(ctx.config).items() if k not in logged]
        for i in range(0, len(params), 100):  # MLflow's batch limit
            self.client.log_batch(self.run_id, params=params[i:i + 100])

    def _tags(self) -> dict[str, str]:
        """MLflow's standard source tags (its UI's User, Source and Version columns), the run's
        choices and the user's `tags=` (each also its own tag, `tags.v2 = 'true'` in a search)."""
        ctx = self.ctx
        tags = {"trainlab.run_dir": str(ctx.run_dir.absolute()), "mlflow.source.name": "trainlab",
                "mlflow.source.type": "LOCAL"}
        try:
            tags["mlflow.user"] = getpass.getuser()
        except (KeyError, OSError):  # no user name for this uid (some containers)
            pass
        if ctx.git:  # MLflow's own tag (its UI's Source column shows it); git_commit/git_dirty below too
            tags["mlflow.source.git.commit"] = ctx.git["commit"]
        tags |= {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in run_tags(ctx).items()}
        tags |= {tag: "true" for tag in ctx.tags}
        return tags

    def log(self, step: int, row: dict, step_losses: dict) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, step) for k, v in row.items()]
        metrics += [Metric("train_step_loss", v, now, s) for s, v in step_losses.items()]
        for i in range(0, len(metrics), 1000):  # MLflow's batch limit
            self.client.log_batch(self.run_id, metrics=metrics[i:i + 1000])

    def close(self, status: str, summary: dict, figures: list[Path]) -> None:
        from mlflow.entities import Metric

        step = int((summary.get("final") or {}).get("step") or 0)
        now = int(time.time() * 1000)
        results = [Metric(k, v, now, step) for k, v in final_metrics(summary).items()]
        if results:  # best_val_acc, final_val_loss, test_acc...: sortable columns in the runs table
            self.client.log_batch(self.run_id, metrics=results)
        if self.cfg.artifacts:
            for path in [self.ctx.run_dir / "summary.json", *figures]:
                if path.is_file():
                    self.client.log_artifact(self.run_id, str(path))
        if self.cfg.checkpoints:
            for path in sorted((self.ctx.run_dir / "checkpoints").glob("*.pt")):
                self.client.log_artifact(self.run_id, str(path), artifact_path="checkpoints")
        state = {"completed": "FINISHED", "interrupted": "KILLED"}.get(status, "FAILED")
        self.client.set_tag(self.run_id, "trainlab.status", status)
        self.client.set_terminated(self.run_id, status=state)
