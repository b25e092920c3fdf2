"""Per-layer activation and gradient statistics: is the signal alive at every depth?

    stats = layer_statistics(model, x, y, loss_fn)
    print(render_table(stats)); save_histograms(stats, "activations.png")

This is the classic initialization study made routine: with weights too small a
deep tanh net's activations shrink towards zero layer by layer, with weights too
large they pile up at +-1 (saturated, no gradient), and with Xavier/Kaiming
scaling they keep a steady spread.

What is measured: one forward pass with a forward hook on every activation
module (in call order; a module called several times yields one entry per call),
then optionally one backward pass for dL/d(activation output).

Mode: the model runs in *train* mode, the mode its first optimisation step sees
(batch norm normalises with batch statistics; eval-mode running statistics of a
fresh model are just 0 and 1). Dropout therefore stays active too, and its noise
shows in the layers after it. The model is left exactly as it was: training
flags and buffers (batch norm running statistics) are restored, and gradients
are taken with torch.autograd.grad, so no parameter's .grad is touched.
"""
from __future__ import annotations

import io
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from torch import nn

ACTIVATIONS = (
    nn.Tanh, nn.Sigmoid, nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.CELU, nn.SELU,
    nn.GELU, nn.SiLU, nn.Mish, nn.Softplus, nn.Softsign, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid,
)
# Activations whose output is <= 0 exactly where their slope is 0 or small: a unit
# that stays there for every example is "dead" for this batch.
RELU_FAMILY = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.CELU, nn.SELU,
    nn.GELU, nn.SiLU, nn.Mish, nn.Hardswish,
)
SATURATION_LEVEL = 0.99  # tanh |a| above this, sigmoid within 0.01 of 0 or 1: slope below ~0.02
HISTOGRAM_SAMPLE = 4096  # values kept per layer; enough for a 50-bin histogram


@dataclass
class LayerStats:
    index: int
    name: str
    kind: str
    shape: tuple[int, ...]
    mean: float
    std: float
    frac_saturated: float | None  # None: the activation does not saturate
    frac_dead: float | None  # share of outputs <= 0 (ReLU family only)
    frac_dead_units: float | None  # share of units <= 0 for every example in the batch
    grad_std: float | None = None  # std of dL/d(output); None without a loss
    sample: torch.Tensor = field(default=None, repr=False)  # random values for histograms

    def to_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "sample"}
        out["shape"] = list(self.shape)
        return out


def is_activation(module: nn.Module) -> bool:
    return isinstance(module, ACTIVATIONS) or getattr(module, "is_activation", False) is True


def layer_statistics(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    loss_fn=None,
    *,
    layer_types: tuple[type, ...] | None = None,
    seed: int = 0,
) -> list[LayerStats]:
    """Statistics of every activation output (or of every `layer_types` module).

    Gradient statistics need both `y` and `loss_fn`. `seed` fixes which values are
    kept for histograms.
    """
    want_grads = y is not None and loss_fn is not None
    selected = (lambda m: isinstance(m, layer_types)) if layer_types else is_activation
    names = {m: name for name, m in model.named_modules()}
    generator = torch.Generator().manual_seed(seed)
    records: list[tuple[nn.Module, torch.Tensor | None, LayerStats]] = []

    def record(module, _inputs, output):
        if isinstance(output, torch.Tensor):
            # Hold on to the output only when its gradient is wanted, or every activation stays in memory.
            records.append((module, output if want_grads else None, _describe(module, output, generator)))

    handles = [m.register_forward_hook(record) for m in model.modules() if selected(m)]
    if not handles:
        raise ValueError("the model has no activation modules to inspect; pass layer_types=(...) to pick others")
    modes = {m: m.training for m in model.modules()}
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    try:
        model.train()
        with torch.set_grad_enabled(want_grads):
            output = model(x)
            if want_grads:
                _add_gradient_stats(loss_fn(output, y), records)
    finally:
        for h in handles:
            h.remove()
        for m, training in modes.items():
            m.train(training)
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(buffers[name])

    stats = [s for _, _, s in records]
    _name_calls(stats, [names[m] for m, _, _ in records])
    return stats


def _describe(module: nn.Module, output: torch.Tensor, generator: torch.Generator) -> LayerStats:
    # Statistics are taken now, inside the hook: a later in-place op may overwrite `output`.
    a = output.detach()
    a64 = a.double()
    saturated, dead = _saturation_mask(module, a), _dead_mask(module, a)
    dead_units = None
    if dead is not None and a.dim() >= 2:  # units are features (MLP) or channels (CNN): dim 1
        dead_units = dead.transpose(0, 1).reshape(a.shape[1], -1).all(dim=1).double().mean().item()
    picks = torch.randperm(a.numel(), generator=generator)[:HISTOGRAM_SAMPLE].to(a.device)
    return LayerStats(
        index=0, name="", kind=type(module).__name__, shape=tuple(a.shape),
        mean=a64.mean().item(), std=a64.std().item() if a.numel() > 1 else 0.0,
        frac_saturated=None if saturated is None else saturated.double().mean().item(),
        frac_dead=None if dead is None else dead.double().mean().item(),
        frac_dead_units=dead_units,
        sample=a.reshape(-1)[picks].float().cpu(),
    )


def _saturation_mask(module: nn.Module, a: torch.Tensor) -> torch.Tensor | None:
    if isinstance(module, (nn.Tanh, nn.Softsign)):
        return a.abs() > SATURATION_LEVEL
    if isinstance(module, (nn.Sigmoid, nn.Hardsigmoid)):
        return (a < 1 - SATURATION_LEVEL) | (a > SATURATION_LEVEL)
    if isinstance(module, nn.ReLU6):
        return a >= module.max_val  # its lower flat side is counted as dead instead
    if isinstance(module, nn.Hardtanh):
        return (a <= module.min_val) | (a >= module.max_val)
    return None


def _dead_mask(module: nn.Module, a: torch.Tensor) -> torch.Tensor | None:
    return a <= 0 if isinstance(module, RELU_FAMILY) else None


def _add_gradient_stats(loss: torch.Tensor, records) -> None:
    if loss.numel() != 1:
        raise ValueError(f"loss_fn must return a scalar, got shape {tuple(loss.shape)}")
    tracked = [(out, s) for _, out, s in records if out.requires_grad]
    grads = torch.autograd.grad(loss, [out for out, _ in tracked], allow_unused=True)
    for (_, s), g in zip(tracked, grads):
        # allow_unused: an output the loss ignores has gradient exactly 0.
        s.grad_std = 0.0 if g is None else (g.double().std().item() if g.numel() > 1 else 0.0)


def _name_calls(stats: list[LayerStats], module_names: list[str]) -> None:
    total, seen = Counter(module_names), Counter()
    for i, (s, name) in enumerate(zip(stats, module_names)):
        seen[name] += 1
        label = name or "model"
        if total[name] > 1:  # a shared module (one nn.Tanh reused at every depth): number its calls
            label = f"{label}[call {seen[name]}]"
        s.index, s.name = i, label


def render_table(stats: list[LayerStats], width: int = 120) -> str:
    table = Table(title="layer statistics (train mode, one batch)")
    for column in ("#", "layer", "kind", "mean", "std", "saturated", "<= 0", "dead units", "grad std"):
        table.add_column(column, justify="left" if column in ("layer", "kind") else "right")
    for s in stats:
        table.add_row(
            str(s.index), s.name, s.kind, f"{s.mean:+.3e}", f"{s.std:.3e}", _pct(s.frac_saturated),
            _pct(s.frac_dead), _pct(s.frac_dead_units), "-" if s.grad_std is None else f"{s.grad_std:.3e}",
        )
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(table)
    return console.file.getvalue().rstrip()


def save_histograms(stats: list[LayerStats], path, *, bins: int = 50) -> Path:
    """One small histogram per layer, on a shared x-axis so that a distribution
    collapsing towards 0 or piling up at the bounds is visible across depth."""
    if not stats:
        raise ValueError("no layer statistics to plot")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = min(5, len(stats))
    rows = math.ceil(len(stats) / cols)
    from matplotlib.figure import Figure  # here, not at import: a training run imports this module, draws elsewhere

    fig = Figure(figsize=(2.6 * cols, 2.2 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, sharex=True, squeeze=False).ravel()
    for ax, s in zip(axes, stats):
        values = s.sample[torch.isfinite(s.sample)].numpy()
        ax.hist(values, bins=bins, color="tab:blue")
        ax.set_title(f"{s.name} ({s.kind})\nstd {s.std:.2g}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_yticks([])
    for ax in axes[len(stats):]:
        ax.set_visible(False)
    fig.savefig(path, dpi=100)
    return path


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"
