"""How the core's epochs are stepped: one model, or a stack of seed replicates. One interface:

    batches_per_epoch()                        steps in a full epoch
    train_epoch(start, first_step, stop, on_step) -> end
                                               the epoch's steps from batch `start`, each active run's
                                               running sums (run.pending) updated; `end` < batches
                                               when stop() cut it short after a step
    sync(run)                                  the run's own objects hold its current weights,
                                               optimizer, schedule and EMA (before an evaluation or
                                               a checkpoint); nothing to do for one model
    freeze(run)                                the run has ended: it takes no further step

The permutation of an epoch is drawn from each run's shuffle generator when the epoch starts
(start == 0); a call with start > 0 finds the generators at the epoch's starting state (a resumed
run, or a timed checkpoint mid-epoch) and draws the same permutation again.
"""
from __future__ import annotations

import functools
from typing import Callable, Protocol

import torch

from trainlab.data.batches import rank_batches, steps_per_epoch
from trainlab.data.preprocess import to_float
from trainlab.engine.run import Run
from trainlab.engine.stacked import Stack


class Stepper(Protocol):
    def batches_per_epoch(self) -> int: ...
    def train_epoch(self, *, start: int, first_step: int, stop: Callable[[], bool], on_step: Callable) -> int: ...
    def sync(self, run: Run) -> None: ...
    def freeze(self, run: Run) -> None: ...


class SingleStepper:
    """One model (on one process, or one rank of a DDP job): the Loop's own epoch, into the run's
    running sums (bound here, not wrapped: no extra frame between the core and the hot loop)."""

    def __init__(self, run: Run):
        self.run = run
        self.batches_per_epoch = run.loop.batches_per_epoch
        self.train_epoch = functools.partial(run.loop.train_epoch, run.pending)

    def sync(self, run: Run) -> None:
        pass

    def freeze(self, run: Run) -> None:
        pass


class StackedStepper:
    """Seed replicates of one configuration stepped as one stacked model (trainlab.engine.stacked):
    replicate r's slice of each batch is its own run's batch (its permutation, its augmentation
    draws), so each replicate trains as its sequential run would, up to the dropout masks, which
    the group draws together from the global generator."""

    def __init__(self, runs: list[Run]):
        self.runs = runs
        self.index = {id(run): r for r, run in enumerate(runs)}
        self.stack = Stack(runs, [run.c for run in runs])
        self.active = list(runs)
        lead = runs[0]
        self.train, self.pre, self.augment = lead.c.splits.train, lead.c.preprocess, lead.c.augment
        self.batch_size, self.step_limit = lead.trainer.batch_size, lead.trainer.limit_batches.train

    def batches_per_epoch(self) -> int:
        steps = steps_per_epoch(len(self.train.y), self.batch_size)
        return steps if self.step_limit is None else min(steps, self.step_limit)

    def train_epoch(self, *, start: int, first_step: int, stop: Callable[[], bool], on_step: Callable) -> int:
        runs, n = self.runs, len(self.train.y)
        # every replicate draws its own permutation, as its run would (ended ones too: their slices are frozen)
        order = torch.stack([torch.stack(rank_batches(n, self.batch_size, 1, 0, run.c.shuffle_gen)[:self.step_limit])
                             for run in runs], dim=1)  # [batches, replicates, batch]
        size, batch = order.shape[1], order.shape[2]
        diags = [run for run in self.active if run.loop.diag is not None]
        losses, penalties, corrects, end = [], [], [], len(order)
        for i in range(start, len(order)):
            idx = order[i].to(self.train.y.device)
            x, y = self.train.x[idx], self.train.y[idx]  # [replicates, batch, ...]
            if self.augment is not None:  # each replicate's batch with its own generator: the draws its run makes
                pairs = [self.augment(x[r], y[r], run.c.aug_gen) for r, run in enumerate(runs)]
                x, y = torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
            x = self.pre(to_float(x).flatten(0, 1)).unflatten(0, (size, batch))
            sampled = bool(diags) and diags[0].loop.diag.wants(first_step + i - start)
            if sampled:
                for run in diags:
                    self.stack.to_replicate(self.index[id(run)], run.c, full=False)
                    run.loop.diag.before_step()
            scores, data_loss, penalty = self.stack.step(x, y)
            if sampled:
                for run in diags:
                    self.stack.to_replicate(self.index[id(run)], run.c, grads=True, full=False)
                    run.loop.diag.after_step()
            with torch.no_grad():
                labels = y.argmax(dim=2) if y.dim() == 3 else y
                losses.append(data_loss.detach())
                corrects.append((scores.argmax(dim=2) == labels).sum(dim=1))
                if self.stack.penalties:
                    penalties.append(penalty.detach())
            on_step()
            if stop() and i + 1 < len(order):
                end = i + 1
                break
        for run in self.active:  # each replicate's column into its own running sums
            r = self.index[id(run)]
            run.loop._fold(run.pending, [t[r] for t in losses], [t[r] for t in penalties], [t[r] for t in corrects],
                           batch)
        return end

    def sync(self, run: Run) -> None:
        self.stack.to_replicate(self.index[id(run)], run.c)
        run.loop.trained_lr = self.stack.trained_lr

    def freeze(self, run: Run) -> None:
        self.stack.freeze(self.index[id(run)])
        self.active.remove(run)
