"""Learning-rate range test: sweep the LR upwards until the loss explodes.

    result = lr_range_test(model, lambda params, lr: torch.optim.SGD(params, lr), batches, loss_fn)
    print(result.render()); save_plot(result, "lr_find.png")

The LR grows geometrically from lr_min to lr_max over num_steps training steps
(one batch each). Each loss is folded into an exponential moving average,
bias-corrected like Adam's moments so the first steps are not dragged towards 0:

    avg_t = smoothing * avg_(t-1) + (1 - smoothing) * loss_t,   smoothed_t = avg_t / (1 - smoothing^t)

The test stops once the smoothed loss exceeds diverge_factor x its best value so
far, or a raw loss is NaN/inf; that LR is `diverged_lr`.

Suggestions: the LR where the smoothed loss falls fastest per unit of log LR
(steepest descent; before the minimum, training still makes fast progress
there), and the classic alternative, the LR of the lowest loss divided by 10.

Side effects: the model's state_dict (parameters and buffers), its parameters'
.grad and its train/eval flags are restored afterwards, in place, so optimizers
that already hold the parameters stay valid. The optimizer made here is thrown
away. Not restored: the global RNG state and whatever `batches` has yielded.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn


@dataclass
class LRFindResult:
    lrs: list[float]  # one per recorded step, increasing
    losses: list[float]  # raw training loss of each step
    smoothed: list[float]  # bias-corrected moving average of `losses`
    suggested_lr: float | None  # steepest descent; None when the loss never fell
    min_loss_lr: float  # LR of the lowest smoothed loss
    diverged_lr: float | None  # LR at which the test stopped early; None if it reached lr_max

    @property
    def stopped_early(self) -> bool:
        return self.diverged_lr is not None

    @property
    def alternative_lr(self) -> float:
        """The lowest-loss LR is already too hot to train at; a tenth of it is safe."""
        return self.min_loss_lr / 10

    def to_dict(self) -> dict:
        return {**asdict(self), "stopped_early": self.stopped_early, "alternative_lr": self.alternative_lr}

    def render(self) -> str:
        end = (f"stopped at lr {self.diverged_lr:.2e} (loss exploded)" if self.stopped_early
               else f"reached lr {self.lrs[-1]:.2e} without diverging")
        steepest = "none (the loss never decreased)" if self.suggested_lr is None else f"{self.suggested_lr:.2e}"
        return "\n".join([
            f"LR range test: {len(self.lrs)} steps from lr {self.lrs[0]:.2e}, {end}",
            f"  lowest smoothed loss {min(self.smoothed):.4g} at lr {self.min_loss_lr:.2e}",
            f"  suggested lr (steepest descent): {steepest}",
            f"  alternative (min-loss lr / 10):  {self.alternative_lr:.2e}",
        ])


def lr_range_test(
    model: nn.Module,
    make_optimizer: Callable[[list[nn.Parameter], float], torch.optim.Optimizer],
    batches: Iterable,
    loss_fn: Callable,
    *,
    lr_min: float = 1e-7,
    lr_max: float = 10.0,
    num_steps: int = 200,
    smoothing: float = 0.98,
    diverge_factor: float = 4.0,
) -> LRFindResult:
    if not 0 < lr_min < lr_max:
        raise ValueError(f"need 0 < lr_min < lr_max, got lr_min={lr_min}, lr_max={lr_max}")
    if num_steps < 2 or not 0 <= smoothing < 1 or diverge_factor <= 1:
        raise ValueError(f"need num_steps >= 2, 0 <= smoothing < 1, diverge_factor > 1; got "
                         f"{num_steps}, {smoothing}, {diverge_factor}")
    schedule = np.geomspace(lr_min, lr_max, num_steps).tolist()
    saved = _Snapshot(model)
    try:
        lrs, losses, smoothed, diverged_lr = _sweep(model, make_optimizer, batches, loss_fn, schedule,
                                                    smoothing, diverge_factor)
    finally:
        saved.restore(model)
    if not lrs:
        raise ValueError(f"the very first loss (at lr {lr_min:g}) was not finite; check the model and data")
    skip = max(1, num_steps // 20)
    window = max(1, num_steps // 40)
    return LRFindResult(lrs, losses, smoothed, steepest_descent_lr(lrs, smoothed, skip, window),
                        lrs[int(np.argmin(smoothed))], diverged_lr)


def _sweep(model, make_optimizer, batches, loss_fn, schedule, smoothing, diverge_factor):
    model.train()
    optimizer = make_optimizer([p for p in model.parameters() if p.requires_grad], schedule[0])
    stream = _forever(batches)
    lrs, losses, smoothed = [], [], []
    average, best = 0.0, math.inf
    for step, lr in enumerate(schedule, start=1):
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = next(stream)

        def closure():  # a closure lets LBFGS re-evaluate; every other optimizer calls it once
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            return loss

        loss = optimizer.step(closure).item()  # one host sync per step: needed to stop in time
        if not math.isfinite(loss):
            return lrs, losses, smoothed, lr
        average = smoothing * average + (1 - smoothing) * loss
        smooth = average / (1 - smoothing**step)
        lrs.append(lr)
        losses.append(loss)
        smoothed.append(smooth)
        best = min(best, smooth)
        if smooth > diverge_factor * best:
            return lrs, losses, smoothed, lr
    return lrs, losses, smoothed, None


def steepest_descent_lr(lrs: list[float], smoothed: list[float], skip: int = 1, window: int = 1) -> float | None:
    """LR of the most negative d(smoothed loss)/d(log lr), looked for before the minimum.

    The slope at step i is taken across steps i-window .. i+window: adjacent steps
    are only ~0.1 of a log unit apart, so a one-step difference mostly measures
    batch noise. The first `skip` steps are ignored because their average rests
    on a handful of losses and is noisy too.
    """
    log_lr, loss = np.log(np.asarray(lrs)), np.asarray(smoothed)
    lowest = int(np.argmin(loss))
    candidates = np.arange(max(skip, window), min(lowest, len(loss) - 1 - window) + 1)
    if len(candidates) == 0:
        return None
    slopes = (loss[candidates + window] - loss[candidates - window]) / (
        log_lr[candidates + window] - log_lr[candidates - window])
    best = int(np.argmin(slopes))
    return float(lrs[candidates[best]]) if slopes[best] < 0 else None


def _forever(batches: Iterable) -> Iterator:
    """Yield from `batches` endlessly: a re-iterable (list, DataLoader) is restarted,
    which reshuffles a DataLoader; a one-shot iterator is replayed from memory."""
    if isinstance(batches, Iterator):
        yield from _non_empty(itertools.cycle(batches))
        return
    while True:
        yield from _non_empty(iter(batches))


def _non_empty(iterator: Iterator) -> Iterator:
    first = next(iterator, None)
    if first is None:
        raise ValueError("batches yielded nothing; the LR range test needs (x, y) batches")
    yield first
    yield from iterator


class _Snapshot:
    """Everything the test changes on the model, to put back afterwards."""

    def __init__(self, model: nn.Module):
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.grads = {p: None if p.grad is None else p.grad.detach().clone() for p in model.parameters()}
        self.modes = {m: m.training for m in model.modules()}

    def restore(self, model: nn.Module) -> None:
        model.load_state_dict(self.state)  # copies into the existing tensors
        for p, grad in self.grads.items():
            p.grad = grad
        for m, training in self.modes.items():
            m.train(training)


def save_plot(result: LRFindResult, path) -> Path:
    """Smoothed loss against LR (log x), raw losses faint, suggestions marked."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    ax.plot(result.lrs, result.losses, color="tab:blue", alpha=0.25, linewidth=0.8, label="loss")
    ax.plot(result.lrs, result.smoothed, color="tab:blue", label="smoothed loss")
    if result.suggested_lr is not None:
        i = result.lrs.index(result.suggested_lr)
        ax.axvline(result.suggested_lr, color="tab:red", linestyle="--", linewidth=1)
        ax.plot(result.suggested_lr, result.smoothed[i], "o", color="tab:red",
                label=f"steepest descent {result.suggested_lr:.1e}")
    ax.axvline(result.alternative_lr, color="tab:green", linestyle=":", linewidth=1,
               label=f"min-loss lr / 10 {result.alternative_lr:.1e}")
    ax.set_xscale("log")
    ax.set_ylim(*_y_limits(result))
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title("LR range test" + (f" (stopped at {result.diverged_lr:.1e})" if result.stopped_early else ""))
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=100)
    return path


def _y_limits(result: LRFindResult) -> tuple[float, float]:
    # Frame the descent: the explosion at the end would otherwise squash it flat.
    smoothed = np.asarray(result.smoothed)
    descent = slice(0, int(smoothed.argmin()) + 1)
    low = min(smoothed.min(), min(result.losses[descent]))  # raw losses run ahead of the average
    high = smoothed[descent].max()
    pad = 0.1 * (high - low) or 0.1 * abs(high) or 1.0
    return low - pad, high + 2 * pad
