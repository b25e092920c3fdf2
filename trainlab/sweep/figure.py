"""The sweep figure: each row's validation curves, mean over replicates ± std (a search: its best trials).

Drawn on a bare `Figure` with the Agg canvas instead of through pyplot, so it
neither switches the global backend of the process that calls it (the engine
calls this at the end of a multirun) nor needs a display.
"""
from __future__ import annotations

import math
import statistics
from pathlib import Path

from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from trainlab.sweep.aggregate import Row, Table
from trainlab.sweep.search_table import BEST_CURVES, best_trials

PANELS = (("val_acc", "validation accuracy (%)", 100.0), ("val_loss", "validation loss", 1.0))
# drawn dashed beside each panel's val curve, in the row's colour, when the jobs log them
BESIDE = {"val_acc": "train_eval_acc", "val_loss": "train_eval_loss"}


def mean_curve(row: Row, column: str) -> tuple[list[float], list[float], list[float]]:
    """(epochs, mean, std) of a metrics.csv column over the row's completed jobs.

    Jobs may stop at different epochs (early stopping); each epoch averages the
    jobs that reached it. The std is 0 where only one job contributes, so the
    band vanishes instead of pretending to know a spread.
    """
    by_epoch: dict[float, list[float]] = {}
    for record in row.done:
        for x, y in zip(*record.curve(column)):
            if math.isfinite(y):
                by_epoch.setdefault(x, []).append(y)
    xs = sorted(by_epoch)
    means = [statistics.fmean(by_epoch[x]) for x in xs]
    stds = [statistics.stdev(by_epoch[x]) if len(by_epoch[x]) > 1 else 0.0 for x in xs]
    return xs, means, stds


def plot_curves(table: Table, path: str | Path, title: str = "") -> Path | None:
    """Write the two-panel PNG; None (and no file) when no row has a curve. A search's figure
    shows only its best few trials."""
    if table.search and len(table.rows) > BEST_CURVES:
        trials = len(table.rows)
        table = best_trials(table)
        title = f"{title}: the best {len(table.rows)} of {trials} trials on {table.metrics[0].label}".lstrip(": ")
    curves = {col: [(row, mean_curve(row, col)) for row in table.rows] for col, _, _ in PANELS}
    beside = {col: [mean_curve(row, BESIDE[col])[:2] for row in table.rows] for col, _, _ in PANELS}
    if not any(xs for pairs in curves.values() for _, (xs, _, _) in pairs):
        return None

    fig = Figure(figsize=(11, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(PANELS))
    many = len(table.rows) > 10
    for ax, (column, ylabel, scale) in zip(axes, PANELS):
        for i, (row, (xs, means, stds)) in enumerate(curves[column]):
            if not xs:
                continue
            color = _color(i, len(table.rows))
            mean = [m * scale for m in means]
            ax.plot(xs, mean, color=color, label=f"{row.label} (n={row.n})", linewidth=1.5)
            ax.fill_between(
                xs, [m - s * scale for m, s in zip(mean, stds)],
                [m + s * scale for m, s in zip(mean, stds)], color=color, alpha=0.2, linewidth=0,
            )
            train_xs, train_means = beside[column][i]
            if train_xs:  # the same row's training sample, evaluated like val: the gap is the space between
                ax.plot(train_xs, [m * scale for m in train_means], "--", color=color, linewidth=1, alpha=0.8)
        if any(xs for xs, _ in beside[column]):
            ax.set_title("solid: validation, dashed: train (eval mode)", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    # the legend goes on the first panel with curves (a sweep may log no val_acc)
    legend_ax = next(ax for ax in axes if ax.lines)
    legend_ax.legend(fontsize=6 if many else 8, loc="best")
    if title:
        fig.suptitle(title)
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path


def _color(i: int, n: int):
    # the default cycle has 10 colours; past that it repeats, so sample a
    # continuous map instead (random searches give one row per job)
    return f"C{i}" if n <= 10 else colormaps["viridis"](i / (n - 1))
