"""One training run, start to finish, in its run folder: the run's control flow.

    validate -> assemble (seeded) -> [restore last.pt] -> epochs: train, evaluate,
    checkpoint -> test the best checkpoint -> summary.json, curves.png

What the checkpoints hold is trainlab.engine.run_state; summary.json is
trainlab.engine.summary; whether the run starts or continues in its folder was
decided before (trainlab.run_folder). A failure is a result: exceptions are
written to summary.json (and the traceback to the log) before they propagate.
"""
import logging
import math
import signal
import sys
import time
import traceback
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from trainlab.config import validate
from trainlab.engine import checkpoint as ckpt
from trainlab.engine import distributed
from trainlab.engine.assemble import Components, assemble, resolve_device
from trainlab.engine.console import Progress
from trainlab.engine.loop import EpochSums, Loop
from trainlab.engine.metrics import STEP_LOSSES, MetricsFile, read_floats, write_step_losses
from trainlab.engine.eval_metrics import plot_confusion, row_entries
from trainlab.engine.figures import draw_run_figures
from trainlab.engine.run_state import Counters, last_state, rank_state, restore, weights_state
from trainlab.engine.signals import StopOnSignal, preemption_signal
from trainlab.engine.summary import failure_summary, run_summary, write_summary
from trainlab.engine.threads import resolve_threads
from trainlab.engine.trackers import Trackers, open_trackers
from trainlab.errors import ConfigError
from trainlab.nn.archs import count_parameters
from trainlab.run_folder import Decision, decide

log = logging.getLogger("trainlab")


class Run:
    def __init__(self, cfg: DictConfig, run_dir: Path, overrides: list[str] | None = None,
                 resume_state: dict | None = None, draw_figures=None):
        self.cfg, self.run_dir, self.overrides = cfg, Path(run_dir), list(overrides or [])
        self.draw_figures = draw_figures or draw_run_figures  # run folder -> its figures (in line, or queued)
        self.resume_state = resume_state      # last.pt's content when the run continues
        self.spec = validate(cfg)
        self.trainer = self.spec.trainer
        self.metrics = MetricsFile(self.run_dir / "metrics.csv")
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.counters = Counters()
        self.step_losses: list[float] = []
        self.status = "running"
        self.created = time.time()            # setup_s: from here to the first training step
        self.started = self.created           # reset when training starts: elapsed() is training time
        self.setup_s = 0.0
        self.epoch_start_state = None   # shuffle-generator state at the start of the current epoch
        self.main = distributed.current().is_main  # only rank 0 writes the run folder
        self.stop_signal: int | None = None   # the signal that stopped the run (summary.json, exit code)
        self.signals: set[int] = set()        # signals that reached this process during training
        self.agreed: set[int] = set()         # signals that reached any rank, as agreed by all ranks
        self.preempt_handler = None           # the preemption-signal handler training displaced (submitit's)
        self.last_saved = time.monotonic()    # when last.pt was last written (trainer.checkpoint_every_minutes)
        self._config_dict: dict | None = None  # config_dict()'s, resolved once
        self.checkpoint_writer = None  # a checkpoint.BackgroundWriter when a vectorized group writes aside
        self.trackers = Trackers([])          # logger=: fed each metrics row (trainlab.engine.trackers)
        if self.spec.logger:
            self.draw_figures = draw_run_figures  # in line: the trackers take the figures when the run ends

    def elapsed(self) -> float:
        return self.counters.elapsed_s + (time.time() - self.started)

    def config_dict(self) -> dict:
        """The resolved config every checkpoint holds: resolved once (it does not change once the run
        is set up; resolving it again took ~2 ms per checkpoint, a run writes one or two an epoch)."""
        if self._config_dict is None:
            self._config_dict = OmegaConf.to_container(self.cfg, resolve=True)
        return self._config_dict

    # -- the run ------------------------------------------------------------
    def execute(self) -> dict:
        c, loop, pending, device = self.setup()
        try:
            self.status = self._train(c, loop, pending)
            return self._finish(c, loop, device)
        except BaseException as err:
            self.trackers.close("interrupted" if isinstance(err, KeyboardInterrupt) else "failed", None, [])
            raise

    def setup(self) -> tuple:
        """Everything before the first step: (components, loop, pending sums, device). A vectorized
        group (trainlab.engine.vectorized) sets up each replicate's run so, then trains them together."""
        if self.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            ckpt.remove_stale_temporaries(self.ckpt_dir)
        device = resolve_device(self.trainer.device)
        self.threads = resolve_threads(self.trainer.threads)  # `auto` here is one job at a time (trainlab.job resolves it otherwise)
        torch.set_num_threads(self.threads)
        resume_state, self.resume_state = self.resume_state, None  # not kept alive for the whole run
        c = assemble(self.spec, device, resume_state["preprocess"] if resume_state else None)
        if c.dist.rank > 0:
            # assemble seeds every rank alike: the same initial weights (DDP broadcasts rank 0's anyway)
            # and the same data order (shuffle_gen, untouched here). Dropout (the global torch RNG) and
            # augmentation get a stream per rank, or every rank would drop the same units of its examples.
            torch.manual_seed(distributed.rank_seed(self.spec.seed, c.dist.rank))
            c.aug_gen.manual_seed(distributed.rank_seed(self.spec.seed + 2, c.dist.rank))
        pending = EpochSums.zeros(device)
        self.resumed = bool(resume_state)
        if resume_state:
            restore(self, c, resume_state, pending)
            del resume_state
            log.info(f"resumed from {self.ckpt_dir / 'last.pt'} at epoch {self.counters.epoch}, step {self.counters.step}")
        self.components = c
        if self.trainer.checkpoint_every_minutes is not None and c.dist.world > 1 and self.main:
            log.warning("trainer.checkpoint_every_minutes applies to single-process runs: with "
                        f"{c.dist.world} processes last.pt is written at epoch ends (trainer.checkpoint_every)")
        loop = Loop(c, self.trainer, device)
        if self.trainer.diagnostics != "off" and self.main:
            from trainlab.diagnose.live import LiveDiagnostics

            loop.diag = LiveDiagnostics(c.model, self.trainer.diagnostics, self.trainer.diagnostics_every)
            loop.diag.write_labels(self.run_dir / "diagnostics_layers.json")  # diagnostics.png's layer names
        self._skipped_before = self.counters.skipped_steps
        log.info(f"run folder: {self.run_dir}")
        log.info(f"{self.spec.dataset.name}: {len(c.splits.train)} train / {len(c.splits.val)} val / "
                 f"{len(c.splits.test)} test, input {tuple(c.splits.train.x.shape[1:])}, {c.splits.num_classes} classes; "
                 f"{self.spec.arch.name}: {count_parameters(c.model):,} parameters on {device}")
        self.trackers = open_trackers(self)
        self.pruner = None  # an optuna sweep's job: reports each evaluation to its trial (one process only)
        if self.main and c.dist.world == 1:
            from trainlab.sweep.optuna_search import trial_reporter

            self.pruner = trial_reporter(self.trainer.monitor)
        self.setup_s = time.time() - self.created
        self.started = time.time()
        return c, loop, pending, device

    def _train(self, c: Components, loop: Loop, pending: EpochSums) -> str:
        total_steps = c.steps_per_epoch * self.trainer.epochs
        epochs_this_session = 0
        if self.counters.step == 0 and not self.resumed:  # decided alike on every rank (a collective)
            self._evaluate(c, loop, pending, initial=True)  # the untrained model: metrics.csv's step-0 row
        if self.pruner is not None and not self.pruner.lead and self.pruner.lead_pruned():
            log.info("pruned by the optuna sweep before training: the trial's first replicate was pruned")
            return "pruned"  # a later replicate of a pruned trial
        with Progress(self.trainer.progress, total_steps, self.counters.step) as bar, StopOnSignal(self) as stop:
            while self.counters.epoch < self.trainer.epochs:
                if self.trainer.stop_after is not None and epochs_this_session >= self.trainer.stop_after:
                    return "interrupted"
                if stop.settle():
                    self._save_last(c, pending)
                    return "interrupted"
                start = self.counters.batch_in_epoch
                if start == 0:
                    self.epoch_start_state = c.shuffle_gen.get_state()
                end = loop.train_epoch(pending, bar.advance, start=start, first_step=self.counters.step,
                                       stop=lambda: stop.after_step() or self.timed_checkpoint_due())
                self.counters.step += end - start
                self.counters.skipped_steps = self._skipped_before + loop.skipped
                if end < loop.batches_per_epoch():  # a signal arrived mid-epoch, or a timed checkpoint is due
                    self.counters.batch_in_epoch = end
                    self._save_last(c, pending)
                    if self.agreed:
                        return "interrupted"
                    # the timed checkpoint is written: the epoch goes on from batch `end` of the same
                    # permutation, drawn again from its starting state, as a resumed run would draw it
                    c.shuffle_gen.set_state(self.epoch_start_state)
                    continue
                self.counters.batch_in_epoch = 0
                self.counters.epoch += 1
                if c.polyak is not None:
                    c.polyak.after_epoch(c.model, self.counters.epoch)
                epochs_this_session += 1
                last_epoch = self.counters.epoch == self.trainer.epochs
                if self.counters.epoch % self.trainer.eval_every == 0 or last_epoch:
                    row = self._evaluate(c, loop, pending)
                    pending = EpochSums.zeros(pending.sums.device)
                    bar.advance(0, f"val acc {100 * row['val_acc']:.1f}%")
                    if not math.isfinite(row["train_loss"]):
                        self._save_last(c, pending)
                        return "diverged"
                    if self.pruner is not None and self.pruner.prune(row):
                        self._save_last(c, pending)
                        log.info(f"pruned by the optuna sweep at epoch {self.counters.epoch}")
                        return "pruned"
                    if self._early_stop():
                        self.counters.stopped_early = True
                        self._save_last(c, pending)
                        log.info(f"early stopping at epoch {self.counters.epoch}: no improvement in "
                                 f"{self.counters.evals_since_best} evaluations")
                        return "completed"
                elif not bool(torch.isfinite(distributed.all_reduce_sum(pending.sums[:2].clone())).all()):
                    # one read per epoch between evaluations
                    self.step_losses += torch.cat(pending.step_losses).tolist()
                    pending.step_losses = []
                    self._save_last(c, pending)
                    return "diverged"
                if self.counters.epoch % self.trainer.checkpoint_every == 0 or last_epoch:
                    self._save_last(c, pending)
        return "completed"

    def _evaluate(self, c: Components, loop: Loop, pending: EpochSums, initial: bool = False) -> dict:
        """An evaluation row of metrics.csv. `initial`: the one before the first step (step 0),
        which has no running training numbers and does not take part in best/early stopping."""
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
        if self.main:
            self.metrics.append(row)
            self.trackers.log(row, self.step_losses)
        self.counters.evaluations += 1
        if initial:
            log.info(f"epoch   0/{self.trainer.epochs}  before training: train (eval mode) acc "
                     f"{100 * row['train_eval_acc']:5.1f}%  |  val loss {row['val_loss']:.4f} acc {100 * row['val_acc']:5.1f}%")
            return row
        c.schedule.on_eval(row)
        log.info(f"epoch {row['epoch']:>3}/{self.trainer.epochs}  step {row['step']:>6}  lr {row['lr']:.2e}  "
                 f"train (running) loss {row['train_loss']:.4f} acc {100 * row['train_acc']:5.1f}%  "
                 f"(eval mode {100 * row['train_eval_acc']:5.1f}%)  |  "
                 f"val loss {row['val_loss']:.4f} acc {100 * row['val_acc']:5.1f}%  |  {row['time_s']:.1f}s")
        self._track_best(c, row)
        return row

    def _track_best(self, c: Components, row: dict) -> None:
        value = row[self.trainer.monitor]
        sign = 1.0 if self.trainer.monitor == "val_acc" else -1.0
        best = self.counters.best_value
        delta = self.trainer.early_stop.min_delta
        if math.isfinite(value) and (best is None or sign * (value - best) > delta):
            self.counters.best_value = value
            self.counters.best_epoch, self.counters.best_step = row["epoch"], row["step"]
            self.counters.best_val_loss, self.counters.best_val_acc = row["val_loss"], row["val_acc"]
            self.counters.evals_since_best = 0
            self.best_model = {k: v.detach().clone() for k, v in c.model.state_dict().items()}
            if self.trainer.save_checkpoints and self.main:
                best_state = weights_state(self, c, self.best_model, epoch=row["epoch"], step=row["step"],
                                           metric={self.trainer.monitor: value})
                self.checkpoints.save_atomic(best_state, self.ckpt_dir / "best.pt")
        else:
            self.counters.evals_since_best += 1

    def _early_stop(self) -> bool:
        patience = self.trainer.early_stop.patience
        return patience > 0 and self.counters.evals_since_best >= patience

    def timed_checkpoint_due(self) -> bool:
        """trainer.checkpoint_every_minutes: due when that long has passed since the last last.pt
        (a clock read per step, no device sync). Single-process runs only: DDP ranks would have to
        agree on the step, and their clocks differ (they checkpoint at epoch ends, as warned)."""
        every = self.trainer.checkpoint_every_minutes
        if every is None or not self.trainer.save_checkpoints or self.components.dist.world > 1:
            return False
        return time.monotonic() - self.last_saved >= 60.0 * every

    def _save_last(self, c: Components, pending: EpochSums) -> None:
        self.last_saved = time.monotonic()
        if not self.trainer.save_checkpoints:
            return
        # every rank's own states, gathered on rank 0: a collective, so all ranks save at the same points
        ranks = distributed.gather_object(rank_state(c, pending)) if c.dist.world > 1 else None
        if not self.main:
            return
        state = last_state(self, c, pending)
        if ranks is not None:
            state["ranks"] = ranks  # indexed by rank
        self.checkpoints.save_atomic(state, self.ckpt_dir / "last.pt")
        if self.trainer.snapshots:
            snapshot = weights_state(self, c, c.model.state_dict(), epoch=self.counters.epoch)
            self.checkpoints.save_atomic(snapshot, self.ckpt_dir / f"snapshot_e{self.counters.epoch:03d}.pt")

    def _best_weights(self) -> dict | None:
        if getattr(self, "best_model", None) is not None:
            return self.best_model
        best_path = self.ckpt_dir / "best.pt"
        return ckpt.load(best_path)["model"] if best_path.is_file() else None

    @property
    def checkpoints(self):
        """What writes this run's checkpoints: checkpoint.save_atomic in line, or its group's writer."""
        return self.checkpoint_writer or ckpt

    def _finish(self, c: Components, loop: Loop, device) -> dict:
        if self.checkpoint_writer is not None:
            self.checkpoint_writer.drain()  # best.pt may be read below; a result implies its checkpoints
        distributed.barrier()  # rank 0 has written every metrics row
        rows = read_floats(self.metrics.path)
        test = None
        if self.status == "completed":
            weights = self._best_weights()
            if weights is not None:
                c.model.load_state_dict(weights)
            test = loop.evaluate(c.splits.test)
            confusion = test.pop("confusion", None)
            if confusion is not None and self.main:
                plot_confusion(confusion, self.run_dir / "confusion.png",
                               f"{self.run_dir.name}: test split, best checkpoint (epoch {self.counters.best_epoch})")
            log.info(f"test (best checkpoint, epoch {self.counters.best_epoch}): loss {test['loss']:.4f} "
                     f"acc {100 * test['acc']:.2f}%")
            if self.trainer.tta != "none":
                test["tta"] = self.trainer.tta
                test["tta_views"] = loop.tta_view_count(self.trainer.tta, tuple(c.splits.test.x.shape[1:]))
                tta = loop.evaluate(c.splits.test, tta=self.trainer.tta)
                test |= {"tta_loss": tta["loss"], "tta_acc": tta["acc"]}
                log.info(f"test with {self.trainer.tta} test-time augmentation ({test['tta_views']} views): "
                         f"acc {100 * tta['acc']:.2f}%")
            if c.ema is not None:
                ema = loop.evaluate(c.splits.test, model=c.ema.model)
                test |= {"ema_loss": ema["loss"], "ema_acc": ema["acc"]}
                log.info(f"test of the weight average (EMA, final): acc {100 * ema['acc']:.2f}%")
            if c.polyak is not None and c.polyak.count:
                avg = loop.evaluate_polyak(c.polyak, c.splits.test)
                test |= {"polyak_loss": avg["loss"], "polyak_acc": avg["acc"], "polyak_epochs": c.polyak.count}
                log.info(f"test of the Polyak average of the last {c.polyak.count} epochs: acc {100 * avg['acc']:.2f}%")
        if loop.diag is not None and loop.diag.summary():
            log.warning(f"diagnostics: persistent {loop.diag.summary()} (see diagnostics.png)")
        summary = run_summary(self, rows, test, device)
        summary["diagnosis"] = self._diagnose(rows, c) if self.main else []
        summary["world_size"] = c.dist.world
        if self.main:
            write_summary(self.run_dir / "summary.json", summary)  # the result first: figures can be redrawn
            write_step_losses(self.run_dir / STEP_LOSSES, self.step_losses)  # curves.png's per-step loss
            figures = self.draw_figures(self.run_dir) if rows else None
            extra = [p for p in [self.run_dir / "confusion.png"] if p.is_file()]
            self.trackers.close(self.status, summary, [*(figures or []), *extra])
        distributed.barrier()
        log.info(f"{self.status}: results in {self.run_dir}")
        return summary

    def _diagnose(self, rows: list[dict], c: Components) -> list[dict]:
        try:
            from trainlab.diagnose.curves import diagnose, format_findings
        except ImportError:
            return []
        findings = diagnose(rows, self.step_losses, initial_loss=c.loss_fn.initial_loss(c.splits.num_classes),
                            steps_per_epoch=c.steps_per_epoch, val_size=len(c.splits.val))
        if findings:
            log.info("diagnosis: " + format_findings(findings).replace("\n", "\n  "))
        return [f.to_dict() for f in findings]

    def hand_over(self) -> None:
        """After a preemption signal stopped training and the folder is complete (last.pt, summary.json
        `interrupted`, on every rank past the last barrier): call the handler training displaced.
        submitit's requeues the job from rank 0 and exits (SystemExit passes through); the requeued job
        resumes from last.pt (trainlab.job). When it will not requeue (a time limit reached more often
        than hydra.launcher.max_num_timeout allows) it raises: the run stays `interrupted` for
        `trainlab resume-sweep`. Every rank calls it (submitit's only acts on rank 0), even one the
        signal did not reach, so the job is requeued whichever task was signalled."""
        preempt = preemption_signal()
        handler = self.preempt_handler
        if self.status != "interrupted" or preempt not in self.agreed or not callable(handler):
            return  # a plain process (default handler): stopped and saved as for SIGTERM
        log.info(f"{signal.Signals(preempt).name}: run saved; handing over to the job's handler (requeue)")
        try:
            handler(preempt, None)
        except Exception as err:  # submitit: UncompletedJobError
            log.warning(f"not requeued ({err}); `trainlab resume-sweep` continues it from checkpoints/last.pt")

def run_training(cfg: DictConfig, run_dir: Path, overrides: list[str] | None = None,
                 decision: Decision | None = None, draw_figures=None) -> dict:
    """Run one job; on any exception write a failed summary (and the traceback to the log), then re-raise.

    `decision` is the folder's (trainlab.run_folder.decide), made by the caller that holds the
    folder's lock; without one (tests, scripts) it is made here."""
    run_dir = Path(run_dir)
    started = time.time()
    if decision is None:
        decision = decide(run_dir, bool(cfg.get("resume")), OmegaConf.to_container(cfg, resolve=True))
    existing = decision.resume_state is not None
    try:
        run = Run(cfg, run_dir, overrides, decision.resume_state, draw_figures)
        decision = None  # the run holds the state now (and lets it go once restored)
        summary = run.execute()
    except ConfigError:
        if existing:  # refused before training: the folder keeps the run it holds, untouched
            raise
        return _record_failure(run_dir, cfg, overrides, started, sys.exc_info()[1])
    except BaseException as err:
        _record_failure(run_dir, cfg, overrides, started, err)
    run.hand_over()
    return summary


def _record_failure(run_dir: Path, cfg, overrides, started: float, err: BaseException):
    """A failed (or hard-interrupted) run still leaves a summary.json saying why; then the error propagates."""
    if not isinstance(err, ConfigError):
        log.error("".join(traceback.format_exception(err)).rstrip(), extra={"file_only": True})
    if distributed.current().is_main:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            write_summary(run_dir / "summary.json", failure_summary(run_dir, cfg, overrides, started, err))
        except OSError as write_err:  # a full disk: the error being recorded matters more
            log.warning(f"could not record the failure in summary.json: {write_err}")
    raise err
