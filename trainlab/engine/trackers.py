"""logger=: the experiment trackers, fed what metrics.csv gets, when it gets it.

The run hands each metrics row to `Trackers.log` after appending it to metrics.csv,
with the per-step training losses read back in that same evaluation (the hot loop
never reads anything for a tracker). `close` adds the end: TensorBoard's HParams
entry and figures, MLflow's artifacts and run status, W&B's summary and figures. Each tracker's package is
imported here, only when its option was chosen: the default path imports none.
"""
from __future__ import annotations

import json
import logging
import math
import secrets
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from trainlab.schemas.logger import LOGGERS

log = logging.getLogger("trainlab")


@dataclass
class Context:
    run_dir: Path
    config: dict          # the resolved config (plain containers)
    choices: dict         # group -> option (combinable groups: "a,b"), plus seed: the run's identity
    resumed: bool
    step: int             # the step the run (re)starts from
    sweep: str | None     # the sweep folder's name when this run is a sweep job


def numbers(row: dict) -> dict:
    """The numeric entries of a metrics row (Polyak's columns are None before its window)."""
    return {k: float(v) for k, v in row.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("step",)}


def flatten(node, prefix: str = "") -> dict:
    out = {}
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out |= flatten(value, name + ".")
        else:
            out[name] = value
    return out


def final_metrics(summary: dict) -> dict:
    """The run's end result as flat numbers: best, final and test metrics."""
    out = {}
    for part in ("best", "final", "test"):
        for key, value in (summary.get(part) or {}).items():
            if key in ("epoch", "step", "lr", "train_penalty"):  # counters, not results
                continue
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                out[f"{part}_{key}"] = float(value)
    return out


class Trackers:
    """The run's trackers, fed together; none when logger=none (then nothing is imported)."""

    def __init__(self, trackers: list, seen: int = 0):
        self.trackers, self.seen = trackers, seen

    def log(self, row: dict, step_losses: list[float]) -> None:
        if not self.trackers:
            return
        # the i-th recorded training step's loss is logged at step i+1 (steps skipped by
        # trainer.nonfinite=skip leave no loss, so those steps shift)
        new = {self.seen + i + 1: v for i, v in enumerate(step_losses[self.seen:])}
        self.seen = len(step_losses)
        for tracker in self.trackers:
            tracker.log(int(row["step"]), numbers(row), new)

    def close(self, status: str, summary: dict | None, figures: list[Path]) -> None:
        """The run's end; a tracker that fails here is a warning: the result is already on disk."""
        for tracker in self.trackers:
            try:
                tracker.close(status, summary or {}, figures)
            except Exception as err:
                log.warning(f"logger {tracker.name}: could not record the run's end ({type(err).__name__}: {err})")
        self.trackers = []


def open_trackers(run) -> Trackers:
    """The trackers of a run (rank 0 only: it alone writes the run folder)."""
    if not run.spec.logger or not run.main:
        return Trackers([])
    cfg = run.config_dict()
    choices = {"seed": run.spec.seed}
    for group, node in cfg.items():
        if isinstance(node, dict) and "name" in node:
            choices[group] = str(node["name"])
        elif group in ("regularizer", "augment"):
            choices[group] = ",".join(node or {}) or "none"
    for override in run.overrides:  # the keys this run set (a sweep's axes): HParams columns beside the choices
        key, _, value = override.lstrip("+~").partition("=")
        if "." in key and not key.startswith("hydra.") and not key.startswith("logger."):
            choices[key] = _number(value)
    ctx = Context(run.run_dir, cfg, choices, resumed=run.counters.step > 0, step=run.counters.step, sweep=_sweep_name())
    built = [LOGGERS.builder_of(name)(schema, ctx) for name, schema in run.spec.logger.items()]
    return Trackers(built, seen=len(run.step_losses))


def _number(text: str):
    try:
        return float(text)
    except ValueError:
        return text


def _sweep_name() -> str | None:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
            return Path(HydraConfig.get().sweep.dir).name
    except Exception:  # no Hydra context (tests, scripts): a single run
        pass
    return None


# -- TensorBoard -------------------------------------------------------------
class TensorBoardTracker:
    name = "tensorboard"

    def __init__(self, cfg, ctx: Context):
        from torch.utils.tensorboard import SummaryWriter

        self.cfg, self.ctx = cfg, ctx
        # a resumed run drops the events after its checkpoint, as metrics.csv drops those rows
        self.writer = SummaryWriter(log_dir=str(ctx.run_dir / cfg.dir), purge_step=ctx.step + 1 if ctx.resumed else None)

    def log(self, step: int, row: dict, step_losses: dict) -> None:
        for key, value in row.items():
            self.writer.add_scalar(key, value, step)
        for s, value in step_losses.items():
            self.writer.add_scalar("train_step_loss", value, s)
        self.writer.flush()

    def close(self, status: str, summary: dict, figures: list[Path]) -> None:
        from torch.utils.tensorboard.summary import hparams

        metrics = {f"hparam/{k}": v for k, v in final_metrics(summary).items()}
        params = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in self.ctx.choices.items()}
        params["status"] = status
        for part in hparams(params, metrics):  # the HParams view: this run's choices beside its results
            self.writer.file_writer.add_summary(part)
        step = int((summary.get("final") or {}).get("step") or 0)
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)
        if self.cfg.figures:
            for path in figures:
                self.writer.file_writer.add_summary(png_summary(path.stem, path.read_bytes()), step)
        self.writer.close()


def png_summary(tag: str, png: bytes):
    """An image summary of PNG bytes as they are (no decode): the size comes from the IHDR chunk."""
    from tensorboard.compat.proto.summary_pb2 import Summary

    width, height = struct.unpack(">II", png[16:24])
    image = Summary.Image(height=height, width=width, colorspace=4, encoded_image_string=png)
    return Summary(value=[Summary.Value(tag=tag, image=image)])


# -- MLflow --------------------------------------------------------------------
RUN_FILE = "mlflow_run.json"  # in the run folder: which MLflow run a resumed run continues


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
                name = cfg.experiment or ctx.sweep or "trainlab"
                experiment = self.client.get_experiment_by_name(name)
                exp_id = experiment.experiment_id if experiment else \
                    self.client.create_experiment(name, artifact_location=artifacts)
                self.run_id = self.client.create_run(exp_id, run_name=ctx.run_dir.name,
                                                     tags={"trainlab.run_dir": str(ctx.run_dir.absolute())}).info.run_id
                known.write_text(json.dumps({"tracking_uri": uri, "run_id": self.run_id}) + "\n")
                logged = {}
        from mlflow.entities import Param

        # params are immutable in MLflow: a resumed run adds the keys it did not log before
        params = [Param(k, str(v)[:6000]) for k, v in flatten(ctx.config).items() if k not in logged]
        for i in range(0, len(params), 100):  # MLflow's batch limit
            self.client.log_batch(self.run_id, params=params[i:i + 100])

    def log(self, step: int, row: dict, step_losses: dict) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, step) for k, v in row.items()]
        metrics += [Metric("train_step_loss", v, now, s) for s, v in step_losses.items()]
        for i in range(0, len(metrics), 1000):  # MLflow's batch limit
            self.client.log_batch(self.run_id, metrics=metrics[i:i + 1000])

    def close(self, status: str, summary: dict, figures: list[Path]) -> None:
        if self.cfg.artifacts:
            for path in [self.ctx.run_dir / "summary.json", *figures]:
                if path.is_file():
                    self.client.log_artifact(self.run_id, str(path))
        state = {"completed": "FINISHED", "interrupted": "KILLED"}.get(status, "FAILED")
        self.client.set_tag(self.run_id, "trainlab.status", status)
        self.client.set_terminated(self.run_id, status=state)


# -- Weights & Biases ------------------------------------------------------------
WANDB_RUN_FILE = "wandb_run.json"  # in the run folder: the W&B run id a resumed run continues


class WandbTracker:
    name = "wandb"

    def __init__(self, cfg, ctx: Context):
        import os

        if cfg.mode != "online":  # offline means nothing leaves the machine: not wandb's Sentry crash reports either
            os.environ.setdefault("WANDB_ERROR_REPORTING", "false")
        import wandb

        self.cfg, self.ctx, self.wandb = cfg, ctx, wandb
        known = ctx.run_dir / WANDB_RUN_FILE
        run_id = json.loads(known.read_text())["run_id"] if known.is_file() else secrets.token_hex(4)
        folder = ctx.run_dir / cfg.dir
        folder.mkdir(parents=True, exist_ok=True)
        # console off: the run's own log is train.log; stats and code capture add nothing a run folder lacks
        settings = wandb.Settings(console="off", silent=True, x_disable_stats=True, x_save_requirements=False,
                                  disable_git=True, save_code=False)
        self.run = wandb.init(mode=cfg.mode, project=cfg.project, entity=cfg.entity or None, dir=str(folder),
                              id=run_id, name=ctx.run_dir.name, group=cfg.group or ctx.sweep,
                              resume="allow" if cfg.mode == "online" else None,  # offline: a new folder, same id
                              config=ctx.config, settings=settings, reinit="finish_previous")
        self.run.config.update({"choices": ctx.choices}, allow_val_change=True)
        known.write_text(json.dumps({"run_id": run_id, "mode": cfg.mode}) + "\n")

    def log(self, step: int, row: dict, step_losses: dict) -> None:
        # W&B's step only goes forward: the training steps before this evaluation first, then its row
        for s, value in sorted(step_losses.items()):
            if s < step:
                self.run.log({"train_step_loss": value}, step=s)
        extra = {"train_step_loss": step_losses[step]} if step in step_losses else {}
        self.run.log(row | extra, step=step)

    def close(self, status: str, summary: dict, figures: list[Path]) -> None:
        self.run.summary.update(final_metrics(summary) | {"status": status})
        if self.cfg.figures and figures:
            step = int((summary.get("final") or {}).get("step") or 0)
            self.run.log({path.stem: self.wandb.Image(str(path)) for path in figures}, step=step)
        self.run.finish(exit_code=0 if status == "completed" else 1)


@LOGGERS.builder("tensorboard")
def build_tensorboard(cfg, ctx: Context) -> TensorBoardTracker:
    return TensorBoardTracker(cfg, ctx)


@LOGGERS.builder("mlflow")
def build_mlflow(cfg, ctx: Context) -> MlflowTracker:
    return MlflowTracker(cfg, ctx)


@LOGGERS.builder("wandb")
def build_wandb(cfg, ctx: Context) -> WandbTracker:
    return WandbTracker(cfg, ctx)
