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
import secrets
import struct
from pathlib import Path

from trainlab.engine.tracker_common import Context, final_metrics, numbers, run_tags
from trainlab.schemas.logger import LOGGERS

log = logging.getLogger("trainlab")


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
    from trainlab.provenance import git_state

    sweep = _sweep_dir()
    ctx = Context(run.run_dir, cfg, choices, resumed=run.counters.step > 0, step=run.counters.step,
                  sweep=sweep.name if sweep else None, tags=list(run.spec.tags), git=git_state(),
                  swept=_swept(sweep))
    built = [LOGGERS.builder_of(name)(schema, ctx) for name, schema in run.spec.logger.items()]
    return Trackers(built, seen=len(run.step_losses))


def _number(text: str):
    try:
        return float(text)
    except ValueError:
        return text


def _swept(sweep: Path | None) -> list:
    from trainlab.sweep.job_names import read_swept_keys

    return (read_swept_keys(sweep) or []) if sweep else []


def _sweep_dir() -> Path | None:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
            return Path(HydraConfig.get().sweep.dir)
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
        # torch's hparams writes a bool as the number 1/0: a flag reads better as true/false
        params = {k: str(v).lower() if isinstance(v, bool) else v if isinstance(v, (int, float, str)) else str(v)
                  for k, v in run_tags(self.ctx).items()}
        params["status"] = status
        # the session's start and end only, not the experiment summary `hparams` also makes: with one
        # from any run, TensorBoard takes that run's column list for every run and ticks its first
        # five (constants); without, it infers the columns from all runs, those that differ first
        _, start, end = hparams(params, metrics)
        for part in (start, end):  # the HParams view: this run's choices beside its results
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
        git = {"git_commit": ctx.git["commit"], "git_root": ctx.git["repo"]} if ctx.git else {}
        settings = wandb.Settings(console="off", silent=True, x_disable_stats=True, x_save_requirements=False,
                                  disable_git=not git, save_code=False, **git)
        self.run = wandb.init(mode=cfg.mode, project=cfg.project, entity=cfg.entity or None, dir=str(folder),
                              id=run_id, name=ctx.run_dir.name, group=cfg.group or ctx.sweep,
                              resume="allow" if cfg.mode == "online" else None,  # offline: a new folder, same id
                              config=ctx.config, settings=settings, reinit="finish_previous",
                              tags=wandb_tags(ctx))
        self.run.config.update({"choices": ctx.choices, "tags": ctx.tags, "git": ctx.git}, allow_val_change=True)
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
        if self.cfg.checkpoints and any((self.ctx.run_dir / "checkpoints").glob("*.pt")):
            artifact = self.wandb.Artifact(f"checkpoints-{self.run.id}", type="model")
            artifact.add_dir(str(self.ctx.run_dir / "checkpoints"))
            self.run.log_artifact(artifact)
        if self.cfg.figures and figures:
            step = int((summary.get("final") or {}).get("step") or 0)
            self.run.log({path.stem: self.wandb.Image(str(path)) for path in figures}, step=step)
        self.run.finish(exit_code=0 if status == "completed" else 1)


def wandb_tags(ctx: Context) -> list[str]:
    """W&B's tags: the user's, then `group=option` of the choices (W&B caps a tag at 64 characters)."""
    choices = [f"{k}={v}" for k, v in ctx.choices.items() if "." not in k]
    return [t for t in [*ctx.tags, *choices] if len(t) <= 64]


@LOGGERS.builder("tensorboard")
def build_tensorboard(cfg, ctx: Context) -> TensorBoardTracker:
    return TensorBoardTracker(cfg, ctx)


@LOGGERS.builder("mlflow")
def build_mlflow(cfg, ctx: Context):
    from trainlab.engine.tracker_mlflow import MlflowTracker

    return MlflowTracker(cfg, ctx)


@LOGGERS.builder("wandb")
def build_wandb(cfg, ctx: Context) -> WandbTracker:
    return WandbTracker(cfg, ctx)
