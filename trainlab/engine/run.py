"""One run in its folder: what the training core (trainlab.engine.core) trains, alone or as one
replicate of a stacked group.

A Run owns what its folder records: its components (model, optimizer, data...), its counters
(the state saved whole in last.pt with the rest of trainlab.engine.run_state), metrics.csv, the
best checkpoint, and its summary. The epoch loop is not here: it is core.train, the same for one
run and for a group. Whether the run starts or continues in its folder was decided by the command
shell, which passes the decision in with the run's hooks (trainlab.engine.hooks).
"""
from __future__ import annotations

import logging
import math
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from trainlab.config import RunSpec
from trainlab.engine import checkpoint as ckpt
from trainlab.engine import distributed
from trainlab.engine.assemble import Components, assemble, resolve_device
from trainlab.engine.eval_metrics import row_entries
from trainlab.engine.hooks import FigureDrawer, Hooks
from trainlab.engine.loop import EpochSums, Loop
from trainlab.engine.metrics import MetricsFile
from trainlab.engine.run_state import Counters, restore, weights_state
from trainlab.data.preprocess import to_float
from trainlab.engine.step_size import step_flops
from trainlab.engine.threads import resolve_threads, threads_for_step
from trainlab.nn.archs import count_parameters

log = logging.getLogger("trainlab")


class Run:
    def __init__(self, cfg: DictConfig, spec: RunSpec, run_dir: Path, overrides: list[str] | None = None,
                 resume_state: dict | None = None, draw_figures: FigureDrawer | None = None, hooks: Hooks | None = None,
                 log_file: Path | None = None):
        self.cfg, self.run_dir, self.overrides = cfg, Path(run_dir), list(overrides or [])  # cfg: as composed
        self.draw_figures = draw_figures      # run folder -> its figure files (the caller's), or None
        self.hooks = hooks or Hooks()
        self.log_file = log_file              # a group replicate's own train.log (None: Hydra's handler)
        self.resume_state = resume_state      # last.pt's content when the run continues
        self.spec = spec                      # the config validated by the shell (trainlab.config.validate)
        self.trainer = self.spec.trainer
        self.metrics = MetricsFile(self.run_dir / "metrics.csv")
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.counters = Counters()
        self.step_losses: list[float] = []
        self.status = "running"
        self.summary: dict | None = None
        self.created = time.time()            # setup_s: from here to the first training step
        self.started = self.created           # reset when training starts: elapsed() is training time
        self.setup_s = 0.0
        self.epoch_start_state = None         # shuffle-generator state at the start of the current epoch
        self.main = distributed.current().is_main  # only rank 0 writes the run folder
        self.stop_signal: int | None = None   # the signal that stopped the run (summary.json, exit code)
        self.agreed: set[int] = set()         # signals every rank agreed to stop on
        self.preempt_handler = None           # the preemption-signal handler training displaced (submitit's)
        self.best_model: dict | None = None
        self.verdict: str | None = None       # a hook's verdict on the last evaluation ("pruned")
        self.last_row: dict | None = None     # the last evaluation's metrics row
        self.checkpoint_writer = None         # a checkpoint.BackgroundWriter when a group writes aside
        self._config_dict: dict | None = None
        self.restored_diagnostics: dict | None = None  # last.pt's live-diagnostics state, for their hook

    def elapsed(self) -> float:
        return self.counters.elapsed_s + (time.time() - self.started)

    def config_dict(self) -> dict:
        """The resolved config every checkpoint holds, resolved once (~2 ms each time otherwise)."""
        if self._config_dict is None:
            self._config_dict = OmegaConf.to_container(self.cfg, resolve=True)
        return self._config_dict

    @property
    def checkpoints(self):
        """What writes this run's checkpoints: checkpoint.save_atomic in line, or its group's writer."""
        return self.checkpoint_writer or ckpt

    def logging(self):
        """Where this run's log lines go: its own train.log while a group works on it."""
        return logging_into(self.log_file) if self.log_file is not None else nullcontext()

    # -- before the first step ------------------------------------------------------------------
    def setup(self) -> None:
        """Everything before the first step: data, model, optimizer (restored when resuming), the loop."""
        if self.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            ckpt.remove_stale_temporaries(self.ckpt_dir)
        self.device = resolve_device(self.trainer.device)
        self.threads = resolve_threads(self.trainer.threads)  # `auto` here is one job at a time
        torch.set_num_threads(self.threads)
        resume_state, self.resume_state = self.resume_state, None  # not kept alive for the whole run
        c = assemble(self.spec, self.device, resume_state["preprocess"] if resume_state else None)
        if c.dist.rank > 0:
            # assemble seeds every rank alike: the same initial weights and data order. Dropout (the
            # global torch RNG) and augmentation get a stream per rank, or every rank would drop alike.
            torch.manual_seed(distributed.rank_seed(self.spec.seed, c.dist.rank))
            c.aug_gen.manual_seed(distributed.rank_seed(self.spec.seed + 2, c.dist.rank))
        self.c, self.pending = c, EpochSums.zeros(self.device)
        self.resumed = bool(resume_state)
        if resume_state:
            restore(self, c, resume_state, self.pending)
            del resume_state
            log.info(f"resumed from {self.ckpt_dir / 'last.pt'} at epoch {self.counters.epoch}, step {self.counters.step}")
        if self.trainer.checkpoint_every_minutes is not None and c.dist.world > 1 and self.main:
            log.warning("trainer.checkpoint_every_minutes applies to single-process runs: with "
                        f"{c.dist.world} processes last.pt is written at epoch ends (trainer.checkpoint_every)")
        self.loop = Loop(c, self.trainer, self.device)
        self.step_flops = None  # counted for trainer.threads=auto on a CPU: no more threads than a step keeps busy
        if self.trainer.threads == "auto" and self.device.type == "cpu":
            example = self.loop.pre(to_float(c.splits.train.x[:1].to(self.device)))
            self.step_flops = step_flops(c.model, example, self.trainer.batch_size)
            self.threads = threads_for_step(self.threads, self.step_flops)
            torch.set_num_threads(self.threads)
        self.skipped_before = self.counters.skipped_steps
        log.info(f"run folder: {self.run_dir}")
        log.info(f"{self.spec.dataset.name}: {len(c.splits.train)} train / {len(c.splits.val)} val / "
                 f"{len(c.splits.test)} test, input {tuple(c.splits.train.x.shape[1:])}, {c.splits.num_classes} classes; "
                 f"{self.spec.arch.name}: {count_parameters(c.model):,} parameters on {self.device}, {self.threads} thread(s)"
                 + (f" ({self.step_flops / 1e9:.2g} GFLOP per step)" if self.step_flops else ""))
        self.hooks.on_start(self)

    @property
    def components(self) -> Components:
        return self.c

    # -- an evaluation and what follows from it ---------------------------------------------------
    def evaluate(self, initial: bool = False) -> dict:
        """An evaluation row of metrics.csv. `initial`: the one before the first step (step 0),
        which has no running training numbers and does not take part in best/early stopping."""
        c, loop, pending = self.c, self.loop, self.pending
        sums = distributed.all_reduce_sum(pending.sums.clone())  # every rank's examples count
        loss_sum, pen_sum, correct, n = sums.tolist()  # the one host read per evaluation
        if pending.step_losses:
            # each rank's loss is the mean over its slice; equal slices, so the global loss is their mean
            losses = distributed.all_reduce_sum(torch.cat(pending.step_losses)) / c.dist.world
            self.step_losses += losses.tolist()
        n = max(n, 1)
        val = loop.evaluate(c.splits.val)
        seen = loop.evaluate(loop.train_eval)  # eval mode like val: no dropout, no augmentation
        # lr: the rate the epoch's last step trained at (the schedule has moved on since)
        lr = c.optimizer.param_groups[0]["lr"] if initial or loop.trained_lr is None else loop.trained_lr
        running = (None, None, None) if initial else (loss_sum / n, pen_sum / n, correct / n)
        row = {"step": self.counters.step, "epoch": self.counters.epoch, "lr": lr,
               "train_loss": running[0], "train_penalty": running[1], "train_acc": running[2],
               "val_loss": val["loss"], "val_acc": val["acc"],
               "train_eval_loss": seen["loss"], "train_eval_acc": seen["acc"], "time_s": round(self.elapsed(), 3)}
        row |= row_entries(val, "val")  # trainer.metrics: top-5, per-class accuracy
        if c.ema is not None:
            ema_val = loop.evaluate(c.splits.val, model=c.ema.model)
            row |= {"val_loss_ema": ema_val["loss"], "val_acc_ema": ema_val["acc"]}
        if c.polyak is not None:
            avg_val = loop.evaluate_polyak(c.polyak, c.splits.val)
            row |= {"val_loss_polyak": avg_val["loss"], "val_acc_polyak": avg_val["acc"]}
        if loop.diag is not None and not initial:
            row |= loop.diag.collect()
            for flag in loop.diag.persistent(row):  # a persistent problem, each layer's once
                log.warning(f"diagnostics: {flag}")
        pending.sums.zero_()  # reset in place: the stepper holds this object
        pending.step_losses = []
        if self.main:
            self.metrics.append(row)
        self.verdict = self.hooks.on_eval(self, row, initial)
        self.counters.evaluations += 1  # metrics.csv's rows so far: a resume checks the file holds them
        if initial:
            log.info(f"epoch   0/{self.trainer.epochs}  before training: train (eval mode) acc "
                     f"{100 * row['train_eval_acc']:5.1f}%  |  val loss {row['val_loss']:.4f} acc {100 * row['val_acc']:5.1f}%")
            return row
        c.schedule.on_eval(row)
        log.info(f"epoch {row['epoch']:>3}/{self.trainer.epochs}  step {row['step']:>6}  lr {row['lr']:.2e}  "
                 f"train (running) loss {row['train_loss']:.4f} acc {100 * row['train_acc']:5.1f}%  "
                 f"(eval mode {100 * row['train_eval_acc']:5.1f}%)  |  "
                 f"val loss {row['val_loss']:.4f} acc {100 * row['val_acc']:5.1f}%  |  {row['time_s']:.1f}s")
        self._track_best(row)
        return row

    def _track_best(self, row: dict) -> None:
        value = row[self.trainer.monitor]
        sign = 1.0 if self.trainer.monitor == "val_acc" else -1.0
        best = self.counters.best_value
        if math.isfinite(value) and (best is None or sign * (value - best) > self.trainer.early_stop.min_delta):
            self.counters.best_value = value
            self.counters.best_epoch, self.counters.best_step = row["epoch"], row["step"]
            self.counters.best_val_loss, self.counters.best_val_acc = row["val_loss"], row["val_acc"]
            self.counters.evals_since_best = 0
            self.best_model = {k: v.detach().clone() for k, v in self.c.model.state_dict().items()}
            if self.trainer.save_checkpoints and self.main:
                best_state = weights_state(self, self.c, self.best_model, epoch=row["epoch"], step=row["step"],
                                           metric={self.trainer.monitor: value})
                self.checkpoints.save_atomic(best_state, self.ckpt_dir / "best.pt")
        else:
            self.counters.evals_since_best += 1

    def early_stop(self) -> bool:
        patience = self.trainer.early_stop.patience
        return patience > 0 and self.counters.evals_since_best >= patience

    def pending_finite(self) -> bool:
        """Between evaluations: are the epoch's running sums finite? (one read per epoch)"""
        finite = bool(torch.isfinite(distributed.all_reduce_sum(self.pending.sums[:2].clone())).all())
        if not finite:
            self.step_losses += torch.cat(self.pending.step_losses).tolist()
            self.pending.step_losses = []
        return finite

    def best_weights(self) -> dict | None:
        if self.best_model is not None:
            return self.best_model
        best_path = self.ckpt_dir / "best.pt"
        return ckpt.load(best_path)["model"] if best_path.is_file() else None


@contextmanager
def logging_into(log_file: Path):
    """Route the log's file lines to one replicate's train.log (the console keeps getting them)."""
    root = logging.getLogger()
    files = [h for h in root.handlers if isinstance(h, logging.FileHandler)]
    if files and Path(files[0].baseFilename) == Path(log_file).absolute():
        yield  # already there
        return
    handler = logging.FileHandler(log_file, mode="a")
    handler.setFormatter(files[0].formatter if files else logging.Formatter("[%(asctime)s][%(levelname)s] %(message)s"))
    for h in files:
        root.removeHandler(h)
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()
        for h in files:
            root.addHandler(h)
