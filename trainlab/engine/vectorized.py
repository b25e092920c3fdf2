"""A group of seed replicates trained side by side (hydra/launcher=vectorized): their control flow.

Each replicate is an ordinary Run in its own job folder, set up by Run.setup (its seed: its
initial weights, its shuffle and augmentation generators; each replicate's slice of a batch is
augmented with its own, as its run's batch would be), then its steps are taken together on a
trainlab.engine.stacked.Stack. Everything that is not a training step is the replicate
run's own code, on its own objects, after the stack's slice is copied back: the step-0 row,
evaluation and metrics.csv, best.pt, early stopping, divergence, last.pt, the test of the
best checkpoint, summary.json and the figures. So a replicate's folder is exactly what its own
run leaves, and the folders stay the source of truth: a killed group resumes from each
replicate's checkpoints/last.pt (the global RNG, which draws every replicate's dropout masks,
is saved in each of them alike; restoring any is restoring the group's).

A replicate that stops (early stopping, divergence) is finished at once and frozen in the
stack while the others go on.
"""
import logging
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from trainlab.data.batches import rank_batches
from trainlab.data.preprocess import to_float
from trainlab.engine import checkpoint as ckpt
from trainlab.engine.console import Progress
from trainlab.engine.loop import EpochSums
from trainlab.engine.signals import StopOnSignal
from trainlab.engine.stacked import Stack

log = logging.getLogger("trainlab")


@dataclass
class Replicate:
    """One job of the group: its run, set up, and what its folder's log is."""

    run: object                    # trainlab.engine.run.Run, set up
    parts: tuple                   # Run.setup's (components, loop, pending, device)
    log_file: Path
    status: str = "running"
    summary: dict | None = None
    index: int = 0                 # its slice of the stack
    lock: object = None            # its folder's lock (trainlab.app.run_folder.FolderLock), held until it ends
    cfg: object = None             # its composed config (a failure summary records it)
    started: float = 0.0
    error: str | None = None

    @property
    def c(self):
        return self.parts[0]

    @property
    def loop(self):
        return self.parts[1]


@contextmanager
def logging_into(log_file: Path):
    """Route the log's file lines to one replicate's train.log (the console keeps getting them)."""
    root = logging.getLogger()
    files = [h for h in root.handlers if isinstance(h, logging.FileHandler)]
    handler = logging.FileHandler(log_file, mode="a")
    handler.setFormatter(files[0].formatter if files else logging.Formatter("[%(asctime)s][%(levelname)s] %(message)s"))
    if files and Path(files[0].baseFilename) == Path(log_file).absolute():
        yield  # already there
        return
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


@dataclass
class _Signals:
    """What StopOnSignal sets on a run, for the whole group."""

    signals: set = field(default_factory=set)
    agreed: set = field(default_factory=set)
    stop_signal: int | None = None
    preempt_handler: object = None


def train_group(reps: list[Replicate]) -> None:
    """Train replicates that are all at the same step (a fresh group, or one resumed from the
    same checkpoint step) to their ends; each one's summary lands in its `summary`. Their
    checkpoints are written by one background writer while the group trains on (R files at each
    epoch end); a replicate's writes are on disk before its summary.json is."""
    writer = ckpt.BackgroundWriter(pending=2 * len(reps))
    for rep in reps:
        rep.run.checkpoint_writer = writer
    try:
        _train_group(reps)
    except BaseException:
        writer.wait()  # what was submitted lands; the group's own error is the one reported
        raise
    finally:
        for rep in reps:
            rep.run.checkpoint_writer = None
    writer.drain()


def _train_group(reps: list[Replicate]) -> None:
    for i, rep in enumerate(reps):
        rep.index = i
    stack = Stack([r.run for r in reps], [r.c for r in reps])
    lead = reps[0]
    trainer, c0 = lead.run.trainer, lead.c
    train, pre = c0.splits.train, c0.preprocess
    n = len(train.y)
    now = time.time()
    for rep in reps:
        rep.run.started = now
    if lead.run.counters.step == 0 and not lead.run.resumed:
        for rep in reps:
            with logging_into(rep.log_file):
                rep.run._evaluate(rep.c, rep.loop, rep.parts[2], initial=True)
    sig = _Signals()
    active = list(reps)
    epochs_this_session = 0
    total = c0.steps_per_epoch * trainer.epochs
    with Progress(trainer.progress, total, lead.run.counters.step) as bar, StopOnSignal(sig) as stop:
        while active and active[0].run.counters.epoch < trainer.epochs:
            if trainer.stop_after is not None and epochs_this_session >= trainer.stop_after:
                _end(stack, active, "interrupted", save=False)
                return
            if stop.settle():
                _end(stack, active, "interrupted", sig=sig)
                return
            start = active[0].run.counters.batch_in_epoch
            orders = []
            for rep in reps:  # every replicate draws its own permutation, as its run would (frozen ones too)
                if start == 0:
                    rep.run.epoch_start_state = rep.c.shuffle_gen.get_state()
                orders.append(torch.stack(rank_batches(n, trainer.batch_size, 1, 0, rep.c.shuffle_gen)))
            order = torch.stack(orders, dim=1)  # [batches, replicates, batch]
            end, sums = _epoch(stack, reps, active, order, start, train, pre, bar, stop)
            for rep in active:
                rep.run.counters.step += end - start
            if end < len(order):  # a signal mid-epoch: every replicate's last.pt says where the epoch resumes
                for rep in active:
                    rep.run.counters.batch_in_epoch = end
                _fold(active, sums)
                _end(stack, active, "interrupted", sig=sig)
                return
            _fold(active, sums)
            epochs_this_session += 1
            for rep in list(active):
                rep.run.counters.batch_in_epoch = 0
                rep.run.counters.epoch += 1
                if _after_epoch(stack, rep, trainer):
                    active.remove(rep)
    _end(stack, active, "completed", save=False)


def _epoch(stack: Stack, reps: list, active: list, order: torch.Tensor, start: int, train, pre, bar, stop):
    """The steps of one epoch (from batch `start`); returns (next batch, per-step device values)."""
    size, batch = order.shape[1], order.shape[2]
    diags = [r for r in active if r.loop.diag is not None]
    first_step = active[0].run.counters.step
    augment = reps[0].c.augment  # one configuration per group (replicates differ in their seed only)
    losses, penalties, corrects, end = [], [], [], len(order)
    for i in range(start, len(order)):
        idx = order[i].to(train.y.device)
        x, y = train.x[idx], train.y[idx]  # [replicates, batch, ...]
        if augment is not None:  # each replicate's batch with its own generator: the draws its run makes
            pairs = [augment(x[r], y[r], rep.c.aug_gen) for r, rep in enumerate(reps)]
            x, y = torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
        x = pre(to_float(x).flatten(0, 1)).unflatten(0, (size, batch))
        sampled = bool(diags) and diags[0].loop.diag.wants(first_step + i - start)
        if sampled:
            for rep in diags:
                stack.to_replicate(rep.index, rep.c, full=False)
                rep.loop.diag.before_step()
        scores, data_loss, penalty = stack.step(x, y)
        if sampled:
            for rep in diags:
                stack.to_replicate(rep.index, rep.c, grads=True, full=False)
                rep.loop.diag.after_step()
        with torch.no_grad():
            labels = y.argmax(dim=2) if y.dim() == 3 else y
            losses.append(data_loss.detach())
            corrects.append((scores.argmax(dim=2) == labels).sum(dim=1))
            if stack.penalties:
                penalties.append(penalty.detach())
        bar.advance()
        if stop.after_step() and i + 1 < len(order):
            end = i + 1
            break
    return end, (losses, penalties, corrects, batch)


def _fold(active: list, sums) -> None:
    """Each replicate's column of the epoch's per-step values into its own sums (Loop._fold)."""
    losses, penalties, corrects, batch = sums
    for rep in active:
        r = rep.index
        rep.loop._fold(rep.parts[2], [t[r] for t in losses], [t[r] for t in penalties],
                       [t[r] for t in corrects], batch)


def _after_epoch(stack: Stack, rep: Replicate, trainer) -> bool:
    """Replicate `rep`'s end of an epoch, as Run._train does it; True when it has finished."""
    run, c, loop = rep.run, rep.c, rep.loop
    last_epoch = run.counters.epoch == trainer.epochs
    with logging_into(rep.log_file):
        stack.to_replicate(rep.index, c)
        loop.trained_lr = stack.trained_lr
        if run.counters.epoch % trainer.eval_every == 0 or last_epoch:
            row = run._evaluate(c, loop, rep.parts[2])
            rep.parts = (c, loop, EpochSums.zeros(rep.parts[2].sums.device), rep.parts[3])
            if not math.isfinite(row["train_loss"]):
                return _stop(stack, rep, "diverged")
            if run._early_stop():
                run.counters.stopped_early = True
                log.info(f"early stopping at epoch {run.counters.epoch}: no improvement in "
                         f"{run.counters.evals_since_best} evaluations")
                return _stop(stack, rep, "completed")
        elif not bool(torch.isfinite(rep.parts[2].sums[:2]).all()):
            pending = rep.parts[2]
            run.step_losses += torch.cat(pending.step_losses).tolist()
            pending.step_losses = []
            return _stop(stack, rep, "diverged")
        if run.counters.epoch % trainer.checkpoint_every == 0 or last_epoch:
            run._save_last(c, rep.parts[2])
    return False


def _stop(stack: Stack, rep: Replicate, status: str) -> bool:
    run = rep.run
    run._save_last(rep.c, rep.parts[2])
    stack.freeze(rep.index)
    _finish(rep, status)
    return True


def _end(stack: Stack, active: list, status: str, save: bool = True, sig: _Signals | None = None) -> None:
    """The group ends for every replicate still training: saved (a signal), then finished."""
    for rep in active:
        with logging_into(rep.log_file):
            stack.to_replicate(rep.index, rep.c)
            rep.loop.trained_lr = stack.trained_lr
            if sig is not None:
                rep.run.signals, rep.run.agreed, rep.run.stop_signal = set(sig.signals), set(sig.agreed), sig.stop_signal
            if save:
                rep.run._save_last(rep.c, rep.parts[2])
        _finish(rep, status)


def _finish(rep: Replicate, status: str) -> None:
    run = rep.run
    run.status = status
    with logging_into(rep.log_file):
        c, loop, _, device = rep.parts
        rep.summary = run._finish(c, loop, device)
        rep.status = status
