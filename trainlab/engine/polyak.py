"""Polyak averaging (trainer.polyak.epochs=N): a uniform average of the weights at the end of each
of the last N epochs, evaluated beside the model like the EMA.

The average is torch.optim.swa_utils.AveragedModel's equal-weight running mean. Its batch-norm
statistics are not averaged: statistics of other weights do not describe the averaged net, so
before the average is evaluated they are recomputed on the training split (swa_utils.update_bn).
That pass runs the net in train mode, so dropout and the like draw random numbers: it draws them
inside torch.random.fork_rng, which leaves the training's random stream where it was.

The window is the last N epochs of trainer.epochs: the average starts over at the window's first
epoch, also when a resumed run was given more epochs. A run that stops early averages the
window's epochs it reached (none before the window: then there is no average to report).
"""
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, update_bn


class Polyak:
    def __init__(self, model: nn.Module, epochs: int, total_epochs: int):
        self.first_epoch = total_epochs - epochs + 1  # 1-based: the window's first epoch end
        self.average = AveragedModel(model).eval()
        for p in self.average.parameters():
            p.requires_grad_(False)
        self.bn_stale = False  # averaged since the batch-norm statistics were last recomputed

    @property
    def count(self) -> int:
        """Epoch ends averaged so far (a host read, once per epoch or evaluation)."""
        return int(self.average.n_averaged)

    @torch.no_grad()
    def after_epoch(self, model: nn.Module, epoch: int) -> None:
        if epoch < self.first_epoch:
            return
        if epoch == self.first_epoch:
            self.average.n_averaged.zero_()  # the first sample is copied, earlier ones are forgotten
        self.average.update_parameters(model)
        self.bn_stale = True

    def model(self, train_inputs) -> nn.Module | None:
        """The averaged net with batch-norm statistics of its own (recomputed on `train_inputs`, an
        iterable of preprocessed training batches, when stale); None before the window."""
        if self.count == 0:
            return None
        if self.bn_stale:
            device = next(self.average.parameters()).device
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                update_bn(train_inputs, self.average)
            self.average.eval()
            self.bn_stale = False
        return self.average

    def state_dict(self) -> dict:
        return {"model": self.average.state_dict(), "bn_stale": self.bn_stale}

    def load_state_dict(self, state: dict) -> None:
        self.average.load_state_dict(state["model"])
        self.bn_stale = bool(state["bn_stale"])
