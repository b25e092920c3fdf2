"""Live diagnostics: per-layer health numbers recorded while a run trains.

    diag = LiveDiagnostics(model, level="light", every=10)
    for step, batch in ...:
        sampled = diag.wants(step)
        if sampled:
            diag.before_step()      # before the forward pass
        ... forward, backward, optimizer step, constraints ...
        if sampled:
            diag.after_step()       # after the weights have changed
    row.update(diag.collect())      # once per evaluation: the only host read
    warnings = diag.persistent(row)  # problems that held for PERSIST_EVALS evaluations; diag.flags(row): all
    plot_diagnostics(rows, "diagnostics.png")   # trainlab.diagnose.live_plot

Levels:
  light  per weight tensor (dim > 1, named by its module): the update/weight
         ratio ||w_after - w_before|| / ||w_before|| and the gradient norm ||dL/dw||.
  full   also, for every activation module: the mean and std of its output and
         the fraction of saturated outputs (tanh/sigmoid family) or of dead
         units (ReLU family: a unit whose output is <= 0 for the whole batch),
         from forward hooks armed only during sampled steps.

Why the update/weight ratio: it says how far one step moves a layer relative to
its own size, which is what the learning rate really controls. Around 1e-3 is
the usual healthy value; 1e-2 and more means the layer is being thrown around,
1e-5 and less that it barely learns (too low a learning rate or vanishing
gradients).

Cost: nothing on steps that are not sampled. On a sampled step, one copy of the
weights (into buffers allocated once) and a handful of fused norm kernels; all
results stay in device tensors that accumulate until `collect()`, so the device
never waits on Python. Values in a row are means over the sampled steps since
the previous `collect()`; NaN when no step was sampled in between.

The training itself is untouched: no RNG is drawn and no tensor the step uses
is modified, so a run with diagnostics on ends bit-identical to one without.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from trainlab.diagnose.inspect_layers import _dead_mask, _saturation_mask, is_activation

from trainlab.diagnose.live_plot import PREFIX, RATIO_HIGH, RATIO_LOW

LEVELS = ("off", "light", "full")
# A layer is flagged when most of it is dead or saturated.
MOSTLY = 0.5
# A problem is warned about when it holds at this many evaluations in a row: early, passing
# conditions (large first updates of a tiny-initialized layer) are not problems.
PERSIST_EVALS = 3
# ... unless an update ratio moved this many times towards the healthy range over those evaluations.
SETTLING = 2.0
_TINY = 1e-12  # keeps an all-zero weight tensor (init=zeros) from dividing by zero


def _layer_name(param_name: str) -> str:
    """`3.weight` -> `3`: weights are reported under the module that owns them."""
    name = param_name.removesuffix(".weight")
    return name if name and name != "weight" else "model"


class _ActivationProbe:
    """What one activation module reports: which of saturated/dead applies to it."""

    def __init__(self, name: str, module: nn.Module):
        self.name, self.module = name, module
        probe = torch.zeros(2, 2)
        self.saturates = _saturation_mask(module, probe) is not None
        self.dies = _dead_mask(module, probe) is not None
        self.calls = 0  # forward calls recorded since the last collect (host counter: no sync)

    def columns(self) -> list[str]:
        cols = ["act_mean", "act_std"]
        if self.saturates:
            cols.append("saturated")
        elif self.dies:
            cols.append("dead")
        return [f"{PREFIX}{self.name}.{c}" for c in cols]


class LiveDiagnostics:
    def __init__(self, model: nn.Module, level: str = "light", every: int = 10):
        if level not in LEVELS:
            raise ValueError(f"level={level!r}: choose one of {', '.join(LEVELS)}")
        if every < 1:
            raise ValueError(f"every={every}: sample every N >= 1 steps")
        self.level, self.every = level, every
        self.model = model
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad and p.dim() > 1]
        self.layer_names = [_layer_name(n) for n, _ in named]
        self.weights = [p for _, p in named]
        self.probes = ([_ActivationProbe(n or "model", m) for n, m in model.named_modules() if is_activation(m)]
                       if level == "full" else [])
        self._snapshots: list[torch.Tensor] | None = None  # allocated on first use, on the weights' device
        self._weight_norms: torch.Tensor | None = None
        self._sums: torch.Tensor | None = None  # [layers, 2]: update ratio, grad norm (summed over samples)
        self._act_sums: torch.Tensor | None = None  # [probes, 3]: mean, std, saturated-or-dead fraction
        self._samples = 0
        self._hooks: list = []

    # -- the hot loop ----------------------------------------------------------
    def wants(self, step: int) -> bool:
        """Whether optimizer step `step` (0-based, counted over the whole run) is sampled."""
        return self.level != "off" and bool(self.weights or self.probes) and step % self.every == 0

    @torch.no_grad()
    def before_step(self) -> None:
        """Snapshot the weights and arm the activation hooks; call before the forward pass."""
        self._allocate()
        if self.weights:
            torch._foreach_copy_(self._snapshots, self.weights)
            self._weight_norms = torch.stack(torch._foreach_norm(self._snapshots))
        self._hooks = [p.module.register_forward_hook(self._hook(i)) for i, p in enumerate(self.probes)]

    @torch.no_grad()
    def after_step(self) -> None:
        """Record this step's ratios and gradient norms into device tensors; call after the weights changed."""
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
        if self.weights:
            torch._foreach_sub_(self._snapshots, self.weights)  # the snapshots now hold -(delta w)
            update_norms = torch.stack(torch._foreach_norm(self._snapshots))
            grads = [p.grad if p.grad is not None else torch.zeros((), device=p.device) for p in self.weights]
            grad_norms = torch.stack(torch._foreach_norm(grads)).to(self._sums.dtype)
            ratios = (update_norms / self._weight_norms.clamp_min(_TINY)).to(self._sums.dtype)
            self._sums += torch.stack([ratios, grad_norms], dim=1)
        self._samples += 1

    def _hook(self, index: int):
        probe = self.probes[index]

        def record(_module, _inputs, output):
            if not isinstance(output, torch.Tensor):
                return
            with torch.no_grad():
                a = output.detach().float()
                if probe.saturates:
                    frac = _saturation_mask(probe.module, a).float().mean()
                elif probe.dies and a.dim() >= 2:
                    # a unit (feature or channel, dim 1) is dead when no example switches it on
                    others = [d for d in range(a.dim()) if d != 1]
                    frac = (a.amax(dim=others) <= 0).float().mean()
                else:
                    frac = torch.zeros((), device=a.device)
                # mean and std apart: the fused torch.std_mean is several times slower on CPU
                std = a.std() if a.numel() > 1 else torch.zeros((), device=a.device)
                self._act_sums[index] += torch.stack([a.mean(), std, frac])
            probe.calls += 1

        return record

    def _allocate(self) -> None:
        if self._sums is not None:
            return
        # the model's device now, not at construction: the engine may move the model after building this
        device = next(self.model.parameters(), torch.empty(0)).device
        self._snapshots = [torch.empty_like(w) for w in self.weights]
        self._sums = torch.zeros(len(self.weights), 2, device=device)
        self._act_sums = torch.zeros(len(self.probes), 3, device=device)

    # -- once per evaluation ---------------------------------------------------
    def columns(self) -> list[str]:
        """Every column `collect()` returns, in order (the same set every time)."""
        if self.level == "off":
            return []
        cols = [f"{PREFIX}{n}.{c}" for n in self.layer_names for c in ("update_ratio", "grad_norm")]
        return cols + [c for p in self.probes for c in p.columns()]

    def collect(self) -> dict[str, float]:
        """Means since the last call, as flat columns (NaN where nothing was sampled); resets the sums."""
        if self.level == "off":
            return {}
        if self._sums is None:
            return {c: math.nan for c in self.columns()}
        layers, acts = self._sums.tolist(), self._act_sums.tolist()  # the host reads: right after each other
        out = {}
        for name, (ratio, grad) in zip(self.layer_names, layers):
            n = self._samples
            out[f"{PREFIX}{name}.update_ratio"] = ratio / n if n else math.nan
            out[f"{PREFIX}{name}.grad_norm"] = grad / n if n else math.nan
        for probe, sums in zip(self.probes, acts):
            n = probe.calls
            for column, total in zip(probe.columns(), sums):
                out[column] = total / n if n else math.nan
            probe.calls = 0
        self._sums.zero_()
        self._act_sums.zero_()
        self._samples = 0
        return out

    # -- in last.pt: a run resumed mid-epoch reports the interrupted epoch's columns as if never stopped
    def state_dict(self) -> dict:
        return {"sums": None if self._sums is None else self._sums.cpu(),
                "act_sums": None if self._act_sums is None else self._act_sums.cpu(),
                "samples": self._samples, "probe_calls": [p.calls for p in self.probes],
                "streaks": [[list(k), list(v)] for k, v in getattr(self, "_streaks", {}).items()],
                "warned": [[list(k), v] for k, v in getattr(self, "_warned", {}).items()]}

    def load_state_dict(self, state: dict) -> None:
        if state.get("sums") is not None:
            self._allocate()
            self._sums.copy_(state["sums"])
            self._act_sums.copy_(state["act_sums"])
        self._samples = state["samples"]
        for probe, calls in zip(self.probes, state["probe_calls"]):
            probe.calls = calls
        self._streaks = {tuple(k): tuple(v) for k, v in state["streaks"]}
        self._warned = {tuple(k): v for k, v in state["warned"]}

    def write_labels(self, path: Path) -> None:
        """{layer: "module path, type and weight shape"} for diagnostics.png, which is drawn from files."""
        import json

        modules = dict(self.model.named_modules())
        labels = {}
        for name, weight in zip(self.layer_names, self.weights):
            module = modules.get("" if name == "model" else name)
            kind = type(module).__name__ if module is not None else "weight"
            labels[name] = f"{name} {kind} {'×'.join(str(d) for d in weight.shape)}"
        for probe in self.probes:
            labels.setdefault(probe.name, f"{probe.name} {type(probe.module).__name__}")
        path.write_text(json.dumps(labels, indent=1) + "\n")

    @staticmethod
    def flags(row: dict) -> list[str]:
        """One line per layer whose numbers in `row` (a collect() result or a metrics.csv row) look unhealthy."""
        return [message for _, _, message in LiveDiagnostics.problems(row)]

    def persistent(self, row: dict) -> list[str]:
        """Warnings to log now: a layer's problem that has held for PERSIST_EVALS evaluations in a row,
        each (layer, problem) once per run. A passing condition (the classifier head's tiny initial
        weights make its first update ratios large, which is expected) never warns."""
        now = {(layer, kind): (message, value) for layer, kind, message, value in self._problems(row)}
        streaks = getattr(self, "_streaks", {})  # (layer, problem) -> (evaluations in a row, first value)
        self._streaks = {key: (streaks[key][0] + 1, streaks[key][1]) if key in streaks else (1, value)
                         for key, (_, value) in now.items()}
        self._warned = getattr(self, "_warned", {})
        fresh = []
        for key, (count, first) in self._streaks.items():
            message, value = now[key]
            # an update ratio that moved 2x towards the healthy range over the streak is settling
            settling = key[1].startswith("update/weight") and math.isfinite(value) and first > 0 and value > 0 and \
                max(value / first, first / value) >= SETTLING and (value < first) == key[1].endswith("high")
            if count >= PERSIST_EVALS and not settling and key not in self._warned:
                self._warned[key] = message
                fresh.append(f"{message} (for {count} evaluations)")
        return fresh

    def summary(self) -> str | None:
        """One line at the end of the run: which layers had a persistent problem, or None."""
        warned = getattr(self, "_warned", {})
        if not warned:
            return None
        kinds: dict[str, list[str]] = {}
        for layer, kind in warned:
            kinds.setdefault(kind, []).append(layer)
        return "; ".join(f"{kind} in {len(layers)} layer{'s' * (len(layers) > 1)} ({', '.join(layers)})"
                         for kind, layers in kinds.items())

    @staticmethod
    def problems(row: dict) -> list[tuple[str, str, str]]:
        """(layer, problem, message) for each unhealthy number in `row`."""
        return [found[:3] for found in LiveDiagnostics._problems(row)]

    @staticmethod
    def _problems(row: dict) -> list[tuple[str, str, str, float]]:
        found = []
        for key, value in row.items():
            if not key.startswith(PREFIX) or value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            layer, _, what = key[len(PREFIX):].rpartition(".")
            if what == "update_ratio":
                if not math.isfinite(value) or value > RATIO_HIGH:
                    found.append((layer, "update/weight ratio high", f"{layer}: update/weight ratio {value:.1e} > "
                                  f"{RATIO_HIGH:.0e}: steps are large for this layer's weights (lower the learning rate?)", value))
                elif value < RATIO_LOW:
                    found.append((layer, "update/weight ratio low", f"{layer}: update/weight ratio {value:.1e} < "
                                  f"{RATIO_LOW:.0e}: this layer barely moves (learning rate too low, or vanishing gradients?)", value))
            elif what == "dead" and value > MOSTLY:
                found.append((layer, "dead units", f"{layer}: {100 * value:.0f}% of units are dead "
                                                   "(output <= 0 for the whole batch)", value))
            elif what == "saturated" and value > MOSTLY:
                found.append((layer, "saturated outputs", f"{layer}: {100 * value:.0f}% of outputs are saturated "
                                                          "(gradient close to 0)", value))
        return found
