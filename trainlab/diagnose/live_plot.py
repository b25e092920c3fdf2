"""diagnostics.png: the live diagnostics (trainlab.diagnose.live) over a run's steps.

Apart from the training code so that a figure can be drawn from metrics.csv alone, later
or in another process (trainlab.engine.figures), without importing torch.
"""
from __future__ import annotations

import math
from pathlib import Path

PREFIX = "diag/"
# Healthy update/weight ratios sit around 1e-3; these bounds are two orders of
# magnitude either side, far enough that a flag is worth reading.
RATIO_HIGH = 1e-2
RATIO_LOW = 1e-5


def plot_diagnostics(rows: list[dict], path, labels: dict[str, str] | None = None) -> Path | None:
    """diagnostics.png: each diagnostic over the run's steps, one line per layer, named by
    `labels` (module path, type and weight shape: diagnostics_layers.json) where given.
    Returns None (and writes nothing) when the rows hold no diagnostics."""
    labels = labels or {}
    panels = [("update_ratio", "update / weight ratio", True), ("grad_norm", "gradient norm", True),
              ("act_std", "activation std", True), ("dead", "dead units (fraction)", False),
              ("saturated", "saturated outputs (fraction)", False)]
    series = {what: _series(rows, what) for what, _, _ in panels}
    panels = [p for p in panels if series[p[0]]]
    if not panels:
        return None
    from matplotlib.figure import Figure  # imported when drawing: a run that draws nothing never pays for it

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(4.4 * len(panels), 3.6))
    axes = fig.subplots(1, len(panels), squeeze=False).ravel()
    steps = [r.get("step", i) for i, r in enumerate(rows)]
    for ax, (what, title, log) in zip(axes, panels):
        for layer, values in series[what].items():
            ax.plot(steps, values, label=labels.get(layer, layer), linewidth=1.2)
        if what == "update_ratio":
            ax.axhspan(RATIO_LOW, RATIO_HIGH, color="tab:green", alpha=0.08)
            ax.axhline(1e-3, color="tab:green", linestyle=":", linewidth=1)
        if log and any(v > 0 for vs in series[what].values() for v in vs if math.isfinite(v)):
            ax.set_yscale("log")
        ax.set(title=title, xlabel="step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=1 + len(series[what]) // 8)
    # Fixed margins, not the constrained layout: it measured every tick label twice, half of the
    # figure's drawing time (trainlab.engine.figures draws one per run).
    fig.subplots_adjust(left=0.06 / len(panels) * 2.5, right=0.99, bottom=0.13, top=0.91, wspace=0.3)
    fig.savefig(path, dpi=100)
    return path


def _series(rows: list[dict], what: str) -> dict[str, list[float]]:
    suffix = f".{what}"
    layers = [k[len(PREFIX):-len(suffix)] for k in (rows[0] if rows else {}) if k.startswith(PREFIX) and k.endswith(suffix)]
    return {layer: [float(r.get(f"{PREFIX}{layer}{suffix}", math.nan)) for r in rows] for layer in layers}
