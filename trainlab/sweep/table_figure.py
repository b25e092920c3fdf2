"""table.png: the table as a picture, from the same Table object the CSV is written from.

A grid sweep gets a forest plot: one line per row, the first column's mean with its 95% interval
as a dot and whisker, the baseline as a vertical line, rows that noise cannot tell from the
baseline drawn hollow and grey; the other result columns as small panels beside it. A search
(random or Optuna: rows are trials) gets the objective against each searched parameter instead,
on a log axis where the range is logarithmic, pruned trials marked with a cross.

The plotted numbers (in summary.json's units, like table.csv) are stored in the PNG's text
metadata under the key `trainlab`, as JSON, so a program can check the picture against the table.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from trainlab.sweep.aggregate import Row, Table
from trainlab.sweep.metric import Metric
from trainlab.sweep.search_table import infer_ranges
from trainlab.sweep.significance import NOT_DISTINGUISHABLE

METADATA_KEY = "trainlab"
SMALL_PANELS = 3  # lead columns drawn beside the first one
COLORS = {"distinguishable": "C0", "not distinguishable": "0.6", "baseline": "black", "row": "C0", "best": "C2",
          "other": "0.35"}


def plot_table(table: Table, path: str | Path, title: str = "",
               ranges: dict[str, tuple[float, float, bool]] | None = None) -> Path | None:
    """Write table.png; None (and no file) when no row has a value to draw."""
    if not any(row.cells[table.metrics[0].spec].values for row in table.rows) and not _pruned(table):
        return None
    draw = _search if table.search and table.keys else _forest
    fig, values = draw(table, ranges)
    if title:
        fig.suptitle(title)
    path = Path(path)
    fig.savefig(path, dpi=120, metadata={METADATA_KEY: json.dumps(values)})
    return path


def read_plotted(path: str | Path) -> dict:
    """The numbers a table.png was drawn from (its `trainlab` metadata)."""
    from PIL import Image

    with Image.open(path) as image:
        return json.loads(image.text[METADATA_KEY])


def style(table: Table, row: Row) -> str:
    """How the first panel draws a row: against the baseline when there is one."""
    if table.baseline is None:
        return "best" if row.best else "row"
    if row is table.baseline:
        return "baseline"
    c = row.comparison
    return "distinguishable" if c is not None and c.distinguishable else "not distinguishable"


def _forest(table: Table, ranges) -> tuple[Figure, dict]:
    first = table.metrics[0]
    metrics = [first] + [m for m in table.metrics[1:] if m.lead][:SMALL_PANELS]
    rows = table.rows
    fig = Figure(figsize=(5.5 + 2.4 * (len(metrics) - 1), 1.9 + 0.42 * len(rows)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(metrics), sharey=True, width_ratios=[2.2] + [1] * (len(metrics) - 1),
                        squeeze=False)[0]
    ys = list(range(len(rows) - 1, -1, -1))  # the table's first row on top
    panels = []
    for ax, metric in zip(axes, metrics):
        scale = 100.0 if metric.kind == "percent" else 1.0
        drawn = []
        for y, row in zip(ys, rows):
            cell = row.cells[metric.spec]
            kind = style(table, row) if metric is first else ("baseline" if row is table.baseline else "other")
            if cell.mean is None or not math.isfinite(cell.mean):
                ax.text(0.02, y, row.status_text() if row.n == 0 else "no value", transform=ax.get_yaxis_transform(),
                        va="center", fontsize=7, color="C3")
                continue
            low, high = cell.interval or (None, None)
            _dot(ax, y, cell.mean * scale, None if low is None else (low * scale, high * scale), kind)
            drawn.append({"row": row.label, "mean": cell.mean, "low": low, "high": high, "n": row.n, "style": kind})
        if table.baseline is not None and table.baseline.cells[metric.spec].mean is not None:
            base = table.baseline.cells[metric.spec]
            ax.axvline(base.mean * scale, color="black", linestyle="--", linewidth=1, zorder=0)
            if base.interval is not None and metric is first:
                ax.axvspan(base.interval[0] * scale, base.interval[1] * scale, color="0.9", zorder=-1)
        ax.set_xlabel(metric.label if metric is not first else f"{metric.label}: mean and 95% CI")
        ax.grid(axis="x", alpha=0.3)
        if metric is not first:
            ax.set_title("mean, 95% CI (no test)", fontsize=8)
        panels.append({"metric": metric.spec, "scale": scale, "rows": drawn})
    marks = {"not distinguishable": f"{NOT_DISTINGUISHABLE} ", "best": "best: "}  # as the table marks them
    axes[0].set_yticks(ys, [f"{marks.get(style(table, row), '')}{row.label} (n={row.n})" for row in rows])
    axes[0].set_ylim(-0.7, len(rows) - 0.3)
    fig.legend(handles=_legend(table), fontsize=8, loc="outside lower center", ncols=3, frameon=False)
    return fig, {"kind": "forest", "panels": panels}


def _dot(ax, y: float, mean: float, interval: tuple[float, float] | None, kind: str) -> None:
    color = COLORS[kind]
    hollow = kind == "not distinguishable"
    if interval is not None:
        ax.plot(interval, [y, y], color=color, linewidth=1.4, linestyle=":" if hollow else "-")
    marker = "D" if kind == "baseline" else "o"
    ax.plot([mean], [y], marker=marker, markersize=7, color=color,
            markerfacecolor="white" if hollow else color, markeredgewidth=1.5, linestyle="none")


def _legend(table: Table) -> list[Line2D]:
    def handle(kind: str, label: str) -> Line2D:
        hollow = kind == "not distinguishable"
        return Line2D([], [], color=COLORS[kind], marker="D" if kind == "baseline" else "o",
                      markerfacecolor="white" if hollow else COLORS[kind], linestyle=":" if hollow else "-", label=label)

    if table.baseline is None:
        handles = [handle("row", "mean, 95% CI")]
        return handles + ([handle("best", "best (a test tells it from the runner-up)")] if
                          any(r.best for r in table.rows) else [])
    return [handle("baseline", "baseline (dashed line)"), handle("distinguishable", "distinguishable (Holm p < 0.05)"),
            handle("not distinguishable", "≈ not distinguishable from the baseline")]


def _search(table: Table, ranges) -> tuple[Figure, dict]:
    """The objective against each searched parameter, one panel each; pruned trials as crosses."""
    metric = table.metrics[0]
    scale = 100.0 if metric.kind == "percent" else 1.0
    known = ranges if ranges is not None else infer_ranges([r for row in table.rows for r in row.records])
    keys = table.keys
    columns = min(3, len(keys))
    lines = math.ceil(len(keys) / columns)
    fig = Figure(figsize=(4.2 * columns, 3.4 * lines), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(lines, columns, squeeze=False).ravel()
    best = _best_row(table, metric)
    panels = []
    for ax, key in zip(axes, keys):
        log = bool(known.get(key, (0, 0, False))[2])
        numeric = all(_number(row.values[key]) is not None for row in table.rows)
        categories = list(dict.fromkeys(str(row.values[key]) for row in table.rows))
        points = []
        for row in table.rows:
            x = _number(row.values[key]) if numeric else categories.index(str(row.values[key]))
            cell = row.cells[metric.spec]
            if cell.mean is not None and math.isfinite(cell.mean):
                interval = cell.interval
                if interval is not None:
                    ax.plot([x, x], [interval[0] * scale, interval[1] * scale], color="C0", alpha=0.5, linewidth=1)
                star = row is best
                ax.plot([x], [cell.mean * scale], marker="*" if star else "o", markersize=13 if star else 6,
                        color="C2" if star else "C0", linestyle="none", zorder=3 if star else 2)
                points.append({"row": row.label, "x": x, "y": cell.mean, "status": "completed"})
            for value in _pruned_values(row, metric):
                ax.plot([x], [value * scale], marker="x", markersize=7, color="C3", linestyle="none")
                points.append({"row": row.label, "x": x, "y": value, "status": "pruned"})
        if log:
            ax.set_xscale("log")
        if numeric and key in known and known[key][1] > known[key][0]:
            low, high = known[key][:2]  # the whole searched range, so a crowded edge shows
            pad = (high / low) ** 0.03 if log and low > 0 else None
            ax.set_xlim(*((low / pad, high * pad) if pad else (low - 0.03 * (high - low), high + 0.03 * (high - low))))
        if not numeric:
            ax.set_xticks(range(len(categories)), categories)
        ax.set_xlabel(key + (" (log scale)" if log else ""))
        ax.set_ylabel(metric.label)
        ax.grid(alpha=0.3)
        panels.append({"param": key, "log": log, "numeric": numeric, "points": points})
    for ax in axes[len(keys):]:
        ax.set_visible(False)
    handles = [Line2D([], [], marker="o", color="C0", linestyle="none", label="trial"),
               Line2D([], [], marker="*", color="C2", markersize=12, linestyle="none", label="best trial")]
    if any(p["status"] == "pruned" for panel in panels for p in panel["points"]):
        handles.append(Line2D([], [], marker="x", color="C3", linestyle="none", label="pruned (value when stopped)"))
    fig.legend(handles=handles, fontsize=8, loc="outside lower center", ncols=3, frameon=False)
    return fig, {"kind": "search", "metric": metric.spec, "scale": scale, "panels": panels}


def _best_row(table: Table, metric: Metric) -> Row | None:
    scored = [r for r in table.rows if r.cells[metric.spec].mean is not None and math.isfinite(r.cells[metric.spec].mean)]
    if not scored:
        return None
    pick = max if metric.higher_is_better else min
    return pick(scored, key=lambda r: r.cells[metric.spec].mean)


def _pruned_values(row: Row, metric: Metric) -> list[float]:
    """The objective of the row's pruned jobs when they stopped (their best so far)."""
    found = [metric.value(r) for r in row.records if r.status == "pruned"]
    return [v for v in found if isinstance(v, float) and math.isfinite(v)]


def _pruned(table: Table) -> bool:
    return any(_pruned_values(row, table.metrics[0]) for row in table.rows)


def _number(text) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None
