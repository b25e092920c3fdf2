"""Numerical gradient check: compare backprop with centered finite differences.

    report = check_gradients(model, loss_fn, x, y)
    print(report.render()); report.passed

The check runs on a float64 deep copy of the model, so the caller's model, its
parameters, gradients and buffers are never touched. In float64 a correct
gradient agrees with the finite difference to about 1e-8 relative; float32
round-off alone would already be around 1e-3 and hide real bugs.

Mode: the copy runs in *train* mode with every dropout layer (and RReLU, whose
slope is random in train mode) switched to eval. Train mode keeps batch norm on
batch statistics, the path that training actually differentiates, and it is
deterministic for a fixed batch. Any other randomness left in the forward pass
is caught by evaluating the loss twice, and reported as an error.

Per sampled entry w of a parameter tensor, with step h = eps:

    numeric  = (f(w+h) - f(w-h)) / 2h
    rel      = |analytic - numeric| / max(|analytic|, |numeric|, noise_floor)

`noise_floor` is the gradient size below which the finite difference cannot
resolve "excellent" agreement: f(w±h) each carry a round-off of a few units in
the last place of f, so the numeric derivative is only known to about
ROUNDOFF_ULPS * machine_eps * |f| / h in absolute terms. Dividing by a smaller
gradient would turn that round-off into a fake relative error.

Bands for the worst entry of each tensor (the usual rule of thumb):
    <= 1e-7 excellent | <= 1e-4 ok with kinks | <= 1e-2 suspicious | > 1e-2 wrong

Kinks: ReLU-style units, max pooling and hinge losses are not differentiable
everywhere. A step of h that crosses a kink mixes the slopes of both sides, so
the finite difference disagrees with a perfectly correct analytic gradient. Such
an entry is recognised by its one-sided slopes (f(w+h)-f(w))/h and
(f(w)-f(w-h))/h: across a kink they differ by twice the analytic/numeric gap,
while for a smooth function they agree up to curvature * h. Only entries worse
than 1e-4 are examined (smaller gaps are harmless). These "straddling"
entries are counted and left out of the worst error, because they say nothing
about the backward pass. A wrong backward never changes the forward pass, so it
cannot hide behind this test.

Pass rule: no tensor is "wrong"; and when the model has no kinks (none declared
and none detected) no tensor may be worse than 1e-4 either. With kinks,
"suspicious" tensors still pass, because several crossings inside one step can
escape the straddle test; they are flagged in the table so a human can look.
"""
from __future__ import annotations

import copy
import io
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from trainlab.nn.stochastic import BranchDrop

BANDS = ((1e-7, "excellent"), (1e-4, "ok with kinks"), (1e-2, "suspicious"))
WRONG = "wrong"
UNVERIFIED = "unverified"  # every sampled entry straddled a kink
SMOOTH_TOLERANCE = 1e-4
KINKED_TOLERANCE = 1e-2

# Round-off of one loss evaluation, in units of machine epsilon times |f|.
ROUNDOFF_ULPS = 2.0

# Modules whose output (or loss) is not differentiable everywhere.
KINKED_MODULES = (
    nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.Hardtanh,  # ReLU6 is a Hardtanh
    nn.Hardswish, nn.Hardsigmoid, nn.Hardshrink, nn.Softshrink, nn.Threshold,
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.FractionalMaxPool2d,
    nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
    nn.L1Loss, nn.MultiMarginLoss, nn.MultiLabelMarginLoss, nn.HingeEmbeddingLoss,
    nn.MarginRankingLoss, nn.TripletMarginLoss, nn.CosineEmbeddingLoss,
)
# Stochastic in train mode; switched to eval so the loss is a fixed function.
STOCHASTIC_MODULES = (
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d,
    nn.AlphaDropout, nn.FeatureAlphaDropout, nn.RReLU,
    nn.FractionalMaxPool2d, BranchDrop,  # random pooling regions; stochastic depth
)


@dataclass
class TensorCheck:
    """Outcome for one parameter tensor; `worst_*` describe its worst entry."""

    name: str
    shape: tuple[int, ...]
    entries_checked: int
    kink_straddles: int
    worst_rel_error: float | None  # None when every entry straddled a kink
    worst_index: tuple[int, ...] | None
    analytic: float | None
    numeric: float | None
    band: str


@dataclass
class GradcheckReport:
    tensors: list[TensorCheck]
    has_kinks: bool
    kink_sources: list[str]
    loss: float
    eps: float
    noise_floor: float
    notes: list[str] = field(default_factory=list)

    @property
    def tolerance(self) -> float:
        return KINKED_TOLERANCE if self.has_kinks else SMOOTH_TOLERANCE

    @property
    def failing(self) -> list[TensorCheck]:
        return [t for t in self.tensors if t.worst_rel_error is not None and t.worst_rel_error > self.tolerance]

    @property
    def passed(self) -> bool:
        return not self.failing

    def to_dict(self) -> dict:
        out = asdict(self)
        out.update(passed=self.passed, tolerance=self.tolerance)
        for t in out["tensors"]:
            t["shape"] = list(t["shape"])
            t["worst_index"] = None if t["worst_index"] is None else list(t["worst_index"])
        return out

    def render(self, width: int = 110) -> str:
        table = Table(title=f"gradient check (float64, h={self.eps:g}, loss={self.loss:.6g})")
        for column in ("parameter", "shape", "entries", "worst rel. error", "band", "analytic", "numeric", "kink straddles"):
            table.add_column(column, justify="left" if column in ("parameter", "band") else "right")
        for t in self.tensors:
            table.add_row(
                t.name, "x".join(map(str, t.shape)) or "scalar", str(t.entries_checked),
                _fmt(t.worst_rel_error), t.band, _fmt(t.analytic), _fmt(t.numeric), str(t.kink_straddles),
            )
        console = Console(file=io.StringIO(), width=width, color_system=None)
        console.print(table)
        lines = [console.file.getvalue().rstrip()]
        if self.has_kinks:
            lines.append(
                "kinks: " + "; ".join(self.kink_sources) + ". Errors up to 1e-4 are expected; entries "
                "whose +h/-h steps straddle a kink are counted but not scored."
            )
        lines.extend(self.notes)
        verdict = "PASSED" if self.passed else "FAILED: " + ", ".join(f"{t.name} ({t.band})" for t in self.failing)
        lines.append(f"{verdict} (tolerance {self.tolerance:g}, gradients below {self.noise_floor:.1e} judged absolutely)")
        return "\n".join(lines)


def check_gradients(
    model: nn.Module,
    loss_fn: Callable,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float = 1e-6,
    max_entries_per_tensor: int = 20,
    seed: int = 0,
    kinks: bool = False,
) -> GradcheckReport:
    """Check backprop of `loss_fn(model(x), y)` against finite differences.

    `kinks=True` declares a non-differentiable loss (a plain function cannot be
    inspected; a loss module or function with `has_kinks = True` is found anyway).
    """
    if eps <= 0 or max_entries_per_tensor < 1:
        raise ValueError(f"need eps > 0 and max_entries_per_tensor >= 1, got {eps}, {max_entries_per_tensor}")
    probe = _deterministic_float64_copy(model)
    x, y = _as_float64(x), _as_float64(y)
    named = [(name, p) for name, p in probe.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError("the model has no parameters that require grad; nothing to check")

    def loss_at() -> float:
        with torch.no_grad():
            return float(loss_fn(probe(x), y))

    loss = loss_fn(probe(x), y)
    if loss.numel() != 1:
        raise ValueError(f"loss_fn must return a scalar, got shape {tuple(loss.shape)}")
    grads = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)
    f0 = loss_at()
    if loss_at() != f0:
        raise ValueError("the loss changes between two identical evaluations; gradcheck needs a "
                         "deterministic forward pass (a custom stochastic layer left on in train mode?)")

    noise_floor = ROUNDOFF_ULPS * torch.finfo(torch.float64).eps * max(abs(f0), 1.0) / eps / BANDS[0][0]
    generator = torch.Generator().manual_seed(seed)
    checks = []
    for (name, param), grad in zip(named, grads):
        grad = torch.zeros_like(param) if grad is None else grad  # unused parameter: true gradient is 0
        picks = torch.randperm(param.numel(), generator=generator)[:max_entries_per_tensor]
        entries = [_probe_entry(param, grad, _unravel(int(i), param.shape), eps, loss_at, f0, noise_floor) for i in picks]
        checks.append(_summarise(name, tuple(param.shape), entries))

    sources = _kink_sources(model, loss_fn, kinks)
    straddles = sum(t.kink_straddles for t in checks)
    if straddles and not sources:
        sources.append(f"detected numerically ({straddles} entries straddle a kink)")
    notes = [f"{t.name}: every sampled entry straddled a kink, so it could not be verified"
             for t in checks if t.band == UNVERIFIED]
    return GradcheckReport(checks, bool(sources), sources, f0, eps, noise_floor, notes)


@dataclass
class _Entry:
    index: tuple[int, ...]
    analytic: float
    numeric: float
    rel_error: float
    straddles_kink: bool


def _probe_entry(param, grad, index, eps, loss_at, f0, noise_floor) -> _Entry:
    original = param.data[index].item()
    # Use the steps actually representable in float64, not the nominal eps.
    w_plus, w_minus = original + eps, original - eps
    param.data[index] = w_plus
    f_plus = loss_at()
    param.data[index] = w_minus
    f_minus = loss_at()
    param.data[index] = original

    analytic = grad[index].item()
    numeric = (f_plus - f_minus) / (w_plus - w_minus)
    gap = abs(analytic - numeric)
    rel_error = gap / max(abs(analytic), abs(numeric), noise_floor)
    slope_right = (f_plus - f0) / (w_plus - original)
    slope_left = (f0 - f_minus) / (original - w_minus)
    # Across a kink the one-sided slopes differ by exactly 2 * gap. Only gaps too large
    # for a smooth model are examined, so round-off never passes for a kink, and the
    # ratio must be near 2, so a wrong backward with large curvature does not either.
    straddles = rel_error > SMOOTH_TOLERANCE and gap < abs(slope_right - slope_left) < 3 * gap
    return _Entry(index, analytic, numeric, rel_error, straddles)


def _summarise(name: str, shape: tuple[int, ...], entries: list[_Entry]) -> TensorCheck:
    scored = [e for e in entries if not e.straddles_kink]
    straddles = len(entries) - len(scored)
    if not scored:
        return TensorCheck(name, shape, len(entries), straddles, None, None, None, None, UNVERIFIED)
    worst = max(scored, key=lambda e: e.rel_error)
    return TensorCheck(name, shape, len(entries), straddles, worst.rel_error, worst.index,
                       worst.analytic, worst.numeric, band_of(worst.rel_error))


def band_of(rel_error: float) -> str:
    for limit, band in BANDS:
        if rel_error <= limit:
            return band
    return WRONG  # also NaN: comparisons with NaN are false


def _deterministic_float64_copy(model: nn.Module) -> nn.Module:
    probe = copy.deepcopy(model).double().train()
    for module in probe.modules():
        if isinstance(module, STOCHASTIC_MODULES):
            module.eval()
    return probe


def _as_float64(t):
    return t.double() if isinstance(t, torch.Tensor) and t.is_floating_point() else t


def _unravel(flat_index: int, shape: torch.Size) -> tuple[int, ...]:
    index = []
    for size in reversed(shape):
        flat_index, rest = divmod(flat_index, size)
        index.append(rest)
    return tuple(reversed(index))


def _kink_sources(model: nn.Module, loss_fn, declared: bool) -> list[str]:
    sources = [f"{name or 'model'} ({type(m).__name__})" for name, m in model.named_modules() if _is_kinked(m)]
    loss_modules = list(loss_fn.modules()) if isinstance(loss_fn, nn.Module) else [loss_fn]
    if declared or any(_is_kinked(m) for m in loss_modules):
        sources.append(f"loss ({getattr(loss_fn, '__name__', type(loss_fn).__name__)})")
    return sources


def _is_kinked(obj) -> bool:
    if getattr(obj, "has_kinks", False):
        return True
    if isinstance(obj, (nn.ELU, nn.SELU)):
        # exp(x) - 1 meets x with matching slope only for ELU's alpha = 1; SELU's slopes differ.
        return isinstance(obj, nn.SELU) or obj.alpha != 1.0
    return isinstance(obj, KINKED_MODULES)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2e}"
