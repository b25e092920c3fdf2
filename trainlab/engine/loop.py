"""The per-step hot loop and evaluation.

Nothing here reads a value back to the host per step: losses, penalties and
correct counts accumulate in device tensors that the caller reads once per
evaluation. Batches follow one seeded permutation per epoch; they are gathered
from resident tensors by index (ResidentBatches) or read by a DataLoader
(LoaderBatches, trainer.data_placement=loader), the same batches either way.
"""
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch

from trainlab.data.batches import ResidentBatches, rank_batches, steps_per_epoch
from trainlab.data.preprocess import to_float
from trainlab.data.splits import Split, take
from trainlab.engine.eval_metrics import EvalCounts, resolve

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class EpochSums:
    """Device accumulators: [data loss * n, penalty * n, correct, n] and per-step losses."""

    sums: torch.Tensor
    step_losses: list[torch.Tensor]

    @classmethod
    def zeros(cls, device) -> "EpochSums":
        return cls(torch.zeros(4, device=device, dtype=torch.float64), [])


# The train-eval sample's size at most: enough for its accuracy to within about a point (a binomial
# standard error of 0.7 pp at 90%), which is what the train/val gap needs. As large as validation
# (6,000 MNIST images) it made evaluation a third of a short CNN run's time.
TRAIN_EVAL_SIZE = 2048


def train_sample(train: Split, size: int) -> Split:
    """A fixed sample of the training split, at most `size` examples (the validation split's size,
    at most TRAIN_EVAL_SIZE),
    evaluated like val at every evaluation (train_eval_*): evenly spaced indices, so it is the same
    sample in every session of a run and draws from no random stream (a resume stays bit-identical)."""
    n = len(train.y)
    if size >= n:
        return train
    idx = np.unique(np.linspace(0, n - 1, max(size, 1)).astype(np.int64))
    return Split(take(train.x, idx), train.y[torch.from_numpy(idx).to(train.y.device)])


class Loop:
    def __init__(self, c, trainer, device):
        self.model, self.pre, self.augment, self.loss_fn = c.model, c.preprocess, c.augment, c.loss_fn
        self.train_model, self.dist = c.train_model, c.dist  # DDP wrapper on several ranks
        self.penalties, self.constraints, self.clip = c.penalties, c.constraints, c.clip
        self.optimizer, self.schedule, self.scaler, self.ema = c.optimizer, c.schedule, c.scaler, c.ema
        self.train_split, self.device = c.splits.train, device
        self.train_eval = train_sample(c.splits.train, min(len(c.splits.val), TRAIN_EVAL_SIZE))
        self.trained_lr = None  # the rate the last optimizer step applied (metrics.csv `lr`)
        if c.placement == "loader":
            from trainlab.data.loader import LoaderBatches

            self.batches = LoaderBatches(c.splits, trainer.loader, device, trainer.eval_batch_size)
        else:
            self.batches = ResidentBatches(c.splits.train, device, trainer.eval_batch_size)
        self.shuffle_gen, self.aug_gen = c.shuffle_gen, c.aug_gen
        self.batch_size, self.eval_batch_size = trainer.batch_size, trainer.eval_batch_size
        self.step_limit = trainer.limit_batches.train  # trainer.limit_batches: steps per epoch at most
        self.weights = [p for p in self.model.parameters() if p.requires_grad and p.dim() > 1]
        self.skip_nonfinite = trainer.nonfinite == "skip"
        self.skipped = 0  # steps skipped for a non-finite loss or gradient (skip mode)
        self.diag = None  # trainlab.diagnose.live.LiveDiagnostics, set by the run
        self._zero = torch.zeros((), device=device)  # the penalty when there is none (no allocation per step)
        # L-BFGS re-evaluates the loss several times per step, so it takes a closure
        self.needs_closure = isinstance(self.optimizer, torch.optim.LBFGS)
        self.channels_last = trainer.channels_last
        self.multicrop = trainer.multicrop  # the views of tta=multicrop
        self.num_classes = c.splits.num_classes
        self.eval_metrics = resolve(trainer.metrics, self.num_classes)  # beside top-1 (trainlab.engine.eval_metrics)
        dtype = AUTOCAST_DTYPES.get(trainer.precision)
        self.autocast = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype else nullcontext

    def layout(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def penalty(self) -> torch.Tensor:
        if not self.penalties:
            return self._zero
        return sum(p(self.weights) for p in self.penalties)

    def _step(self, x, target):
        """One optimizer step; returns (scores, data loss, penalty, whether the update was applied)."""
        if self.needs_closure:
            return self._closure_step(x, target)
        scores, data_loss, penalty, total = self._forward_backward(x, target)
        if self.skip_nonfinite and not self._finite(total):
            # One host read per step, the price of this opt-in mode: the update is skipped.
            self.optimizer.zero_grad(set_to_none=True)
            self.skipped += 1
            self.schedule.step()
            return scores, data_loss, penalty, False
        if self.scaler.is_enabled():
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:  # fp32/bf16: the scaler would only forward the call
            self.optimizer.step()
        self._after_update()
        return scores, data_loss, penalty, True

    def _forward_backward(self, x, target):
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            scores = self.train_model(x)
        data_loss = self.loss_fn(scores.float(), target)
        penalty = self.penalty()
        total = data_loss + penalty if self.penalties else data_loss
        (self.scaler.scale(total) if self.scaler.is_enabled() else total).backward()
        if self.clip is not None:
            self.scaler.unscale_(self.optimizer)
            self.clip(self.model.parameters())
        return scores, data_loss, penalty, total

    def _closure_step(self, x, target):
        """L-BFGS evaluates the loss several times per step; the first evaluation is reported."""
        first = []

        def closure():
            out = self._forward_backward(x, target)
            if not first:
                first.append(out[:3])
            return out[3]

        self.optimizer.step(closure)
        self._after_update()
        return (*first[0], True)

    def _after_update(self):
        lr = self.optimizer.param_groups[0]["lr"]
        self.trained_lr = lr  # read before the schedule moves it: the rate this step trained at
        for constrain in self.constraints:
            constrain(self.weights, lr)
        if self.ema is not None:
            self.ema.update()
        self.schedule.step()

    def _finite(self, total: torch.Tensor) -> bool:
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        norms = torch.stack([total.detach().float(), *[g.detach().float().norm() for g in grads]])
        return bool(torch.isfinite(norms).all())

    def batches_per_epoch(self) -> int:
        steps = steps_per_epoch(len(self.train_split.y), self.batch_size * self.dist.world)
        return steps if self.step_limit is None else min(steps, self.step_limit)

    def train_epoch(self, acc: EpochSums, on_step=lambda: None, start: int = 0, stop=lambda: False,
                    first_step: int = 0) -> int:
        """One pass over the training split, or its rest from batch `start` (a resumed epoch).

        Returns the index of the next batch: the epoch's batch count when it
        finished, fewer when `stop()` (a signal) cut it short after a step.
        The permutation is drawn at the epoch's start, so a resumed epoch
        re-draws it from the generator state saved for that start.
        """
        self.model.train()
        # every rank draws the same permutation of global batches and takes its own slice
        batches = rank_batches(len(self.train_split.y), self.batch_size, self.dist.world, self.dist.rank,
                               self.shuffle_gen)[:self.step_limit]
        end = len(batches)
        # Per-step device scalars, summed once when the epoch (or its part) ends: appending
        # a tensor to a list launches no kernel, a running sum would launch several per step.
        losses, penalties, corrects, batch = [], [], [], 0
        for i, (x, target) in enumerate(self.batches.train(batches, start), start):
            batch = len(target)
            if self.augment is not None:  # on the raw (often uint8) batch: pixel moves are cheaper there
                x, target = self.augment(x, target, self.aug_gen)
            x = to_float(x)
            sampled = self.diag is not None and self.diag.wants(first_step + i - start)
            if sampled:
                self.diag.before_step()  # snapshot the weights before the update; hooks see this forward
            scores, data_loss, penalty, kept = self._step(self.layout(self.pre(x)), target)
            if sampled:
                self.diag.after_step()
            if kept:  # a skipped step (trainer.nonfinite=skip) leaves no trace in the sums or the loss history
                with torch.no_grad():
                    labels = target.argmax(dim=1) if target.dim() == 2 else target
                    losses.append(data_loss.detach())
                    corrects.append((scores.argmax(dim=1) == labels).sum())
                    if self.penalties:
                        penalties.append(penalty.detach())
            on_step()
            if stop() and i + 1 < len(batches):
                end = i + 1
                break
        self._fold(acc, losses, penalties, corrects, batch)
        return end

    def _fold(self, acc: EpochSums, losses: list, penalties: list, corrects: list, batch: int) -> None:
        """Add an epoch's per-step scalars to the accumulators. Every batch of an epoch has the
        same size (epoch_batches drops a partial last batch), so sums of means scale by it."""
        if not losses:
            acc.step_losses.append(torch.empty(0, device=self.device))
            return
        step_losses = torch.stack(losses).float()
        loss_sum = step_losses.double().sum()
        penalty_sum = torch.stack(penalties).double().sum() if penalties else self._zero.double()
        correct = torch.stack(corrects).sum().double()
        acc.sums += torch.stack([loss_sum * batch, penalty_sum * batch, correct, self._zero.double() + batch * len(losses)])
        acc.step_losses.append(step_losses)

    def _scores(self, model, x_raw, tta: str):
        """Scores of a batch; with TTA, the log of the softmax averaged over the views
        (so the loss is the cross-entropy of the averaged prediction)."""
        x = to_float(x_raw)
        if tta == "none":
            with self.autocast():
                return model(self.layout(self.pre(x))).float()
        from trainlab.data.augment import tta_views

        views = tta_views(x, tta, multicrop=self.multicrop)
        probs = None
        for view in views:
            with self.autocast():
                p = model(self.layout(self.pre(view))).float().softmax(dim=1)
            probs = p if probs is None else probs + p
        return (probs / len(views)).clamp_min(1e-12).log()

    def tta_view_count(self, tta: str, input_shape: tuple) -> int:
        from trainlab.data.augment import tta_views

        return len(tta_views(torch.zeros(1, *input_shape), tta, multicrop=self.multicrop))

    def train_inputs(self):
        """The training split's inputs, preprocessed, in evaluation batches (no augmentation)."""
        for x, _ in self.batches.eval(self.train_split):
            yield self.layout(self.pre(to_float(x)))

    def evaluate_polyak(self, polyak, split) -> dict:
        """evaluate() of the Polyak average (its batch-norm statistics recomputed first when stale);
        None values before the averaging window, so metrics.csv keeps its columns."""
        average = polyak.model(self.train_inputs())
        return self.evaluate(split, model=average) if average is not None else {"loss": None, "acc": None}

    @torch.no_grad()
    def evaluate(self, split, model=None, tta: str = "none") -> dict:
        """Mean loss and accuracy over a split (and trainer.metrics' extras): one host read at the end."""
        model = model or self.model
        was_training = model.training
        model.eval()
        counts = EvalCounts(self.eval_metrics, self.num_classes, self.device)
        for x, y in self.batches.eval(split):
            scores = self._scores(model, x, tta)
            counts.add(scores, y, self.loss_fn(scores, y))
        model.train(was_training)
        return counts.read(len(split.y))
