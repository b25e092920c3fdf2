"""The per-step hot loop and evaluation.

Nothing here reads a value back to the host per step: losses, penalties and
correct counts accumulate in device tensors that the caller reads once per
evaluation. Batches are gathered from device-resident tensors by index.
"""
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from trainlab.data.batches import epoch_batches, eval_batches
from trainlab.data.preprocess import to_float

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class EpochSums:
    """Device accumulators: [data loss * n, penalty * n, correct, n] and per-step losses."""

    sums: torch.Tensor
    step_losses: list[torch.Tensor]

    @classmethod
    def zeros(cls, device) -> "EpochSums":
        return cls(torch.zeros(4, device=device, dtype=torch.float64), [])


class Loop:
    def __init__(self, *, model, preprocess, augment, loss_fn, penalties, weights, optimizer, scheduler,
                 scaler, train, batch_size, eval_batch_size, precision, device, shuffle_gen, aug_gen):
        self.model, self.pre, self.augment, self.loss_fn = model, preprocess, augment, loss_fn
        self.penalties, self.weights = penalties, weights
        self.optimizer, self.scheduler, self.scaler = optimizer, scheduler, scaler
        self.train_split, self.batch_size, self.eval_batch_size = train, batch_size, eval_batch_size
        self.device, self.shuffle_gen, self.aug_gen = device, shuffle_gen, aug_gen
        dtype = AUTOCAST_DTYPES.get(precision)
        self.autocast = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype else nullcontext

    def penalty(self) -> torch.Tensor:
        if not self.penalties:
            return torch.zeros((), device=self.device)
        return sum(p(self.weights) for p in self.penalties)

    def train_epoch(self, acc: EpochSums, on_step=lambda: None) -> int:
        """One pass over the training split; returns the number of steps taken."""
        self.model.train()
        x_all, y_all = self.train_split.x, self.train_split.y
        batches = epoch_batches(len(y_all), self.batch_size, self.shuffle_gen)
        losses = torch.empty(len(batches), device=self.device)
        for i, idx in enumerate(batches):
            x, target = to_float(x_all[idx]), y_all[idx]
            if self.augment is not None:
                x, target = self.augment(x, target, self.aug_gen)
            x = self.pre(x)
            with self.autocast():
                scores = self.model(x)
            data_loss = self.loss_fn(scores.float(), target)
            penalty = self.penalty()
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(data_loss + penalty).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            with torch.no_grad():
                labels = target.argmax(dim=1) if target.dim() == 2 else target
                n = len(labels)
                losses[i] = data_loss.detach()
                acc.sums[0] += data_loss.detach().double() * n
                acc.sums[1] += penalty.detach().double() * n
                acc.sums[2] += (scores.argmax(dim=1) == labels).sum()
                acc.sums[3] += n
            on_step()
        acc.step_losses.append(losses)
        return len(batches)

    @torch.no_grad()
    def evaluate(self, split, model=None) -> dict:
        """Mean loss and accuracy over a split: one host read at the end."""
        model = model or self.model
        was_training = model.training
        model.eval()
        totals = torch.zeros(2, device=self.device, dtype=torch.float64)
        for sl in eval_batches(len(split.y), self.eval_batch_size, self.device):
            x = self.pre(to_float(split.x[sl]))
            with self.autocast():
                scores = model(x).float()
            y = split.y[sl]
            totals[0] += self.loss_fn(scores, y).double() * len(y)
            totals[1] += (scores.argmax(dim=1) == y).sum()
        model.train(was_training)
        loss_sum, correct = totals.tolist()
        n = max(len(split.y), 1)
        return {"loss": loss_sum / n, "acc": correct / n}
