"""Draw each lesson page's figure from the measured table on that page: the table's first result
column (or the columns named below), one point per row with its ±1 standard deviation; for the
learning-rate search, each trial's score against its learning rate on a log axis.

    python scripts/lesson_figures.py [NAME ...]     # writes docs/lessons/img/<name>.png

The numbers are read from docs/lessons/<name>.md, so the figure cannot disagree with the table
it illustrates, and nothing is trained. A cell without a mean (`diverged 3/3`, `not reached 3/3`)
is written as its text at the left edge.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LESSONS = Path(__file__).resolve().parents[1] / "docs" / "lessons"
# Lessons whose question is answered by more than the first result column.
COLUMNS = {"ema_ensembles": ["test acc (%)", "test acc EMA (%)"]}
CELL = re.compile(r"^\s*([-+]?[\d.]+(?:e[-+]?\d+)?)(?:\s*±\s*([\d.]+))?")


def read_table(page: Path) -> tuple[list[str], list[list[str]], list[str]]:
    """(header, rows, alignments) of the first markdown table on a page."""
    lines = [line for line in page.read_text().splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("| ") and lines[i + 1].startswith("| :--"))
    split = lambda line: [c.strip() for c in line.strip().strip("|").split(" | ")]  # noqa: E731
    header, align = split(lines[start]), split(lines[start + 1])
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append(split(line))
    return header, rows, align


def mean_std(cell: str) -> tuple[float | None, float]:
    match = CELL.match(cell)
    if not match:
        return None, 0.0
    return float(match.group(1)), float(match.group(2) or 0.0)


def draw(name: str) -> Path:
    header, rows, align = read_table(LESSONS / f"{name}.md")
    factors = [i for i, a in enumerate(align) if a.startswith(":") and header[i] != "notes"]
    results = [i for i, a in enumerate(align) if a.endswith(":") and not a.startswith(":") and header[i] != "n"]
    columns = [header.index(c) for c in COLUMNS.get(name, [])] or results[:1]
    labels = [" ".join(f"{header[i]}={row[i]}" if len(factors) > 1 else row[i] for i in factors) for row in rows]
    fig, ax = plt.subplots(figsize=(7.5, 0.42 * len(rows) * len(columns) + 1.6))
    if name == "lr_search":  # a search reads best as a curve over the rate, not as a list of trials
        return _search_figure(name, header, rows, columns[0], fig, ax)
    offset = 0.8 / len(columns)
    for k, col in enumerate(columns):
        values = [mean_std(row[col]) for row in rows]
        ys = [r + k * offset for r in range(len(rows))]
        shown = [(y, m, s) for y, (m, s) in zip(ys, values) if m is not None]
        ax.errorbar([m for _, m, _ in shown], [y for y, _, _ in shown], xerr=[s for _, _, s in shown],
                    fmt="o", capsize=3, label=header[col])
    numbers = [m for col in columns for m, _ in (mean_std(row[col]) for row in rows) if m is not None]
    for k, col in enumerate(columns):
        for r, row in enumerate(rows):
            if mean_std(row[col])[0] is None:
                ax.text(min(numbers), r + k * offset, row[col], va="center", fontsize=8, color="firebrick")
    ax.set_yticks([r + (len(columns) - 1) * offset / 2 for r in range(len(rows))], labels, fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.7)
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlabel(", ".join(header[c] for c in columns) + "  (mean ± 1 std over seeds)")
    if len(columns) > 1:
        ax.legend(fontsize=8, loc="lower right")
    return _finish(name, fig, ax)


def _search_figure(name, header, rows, col, fig, ax) -> Path:
    fig.set_size_inches(7.5, 4.2)
    lr, decay = header.index("optimizer.lr"), header.index("optimizer.weight_decay")
    points = ax.scatter([float(r[lr]) for r in rows], [mean_std(r[col])[0] for r in rows],
                        c=[float(r[decay]) for r in rows], norm=matplotlib.colors.LogNorm(), cmap="viridis")
    fig.colorbar(points, ax=ax, label="optimizer.weight_decay")
    ax.set_xscale("log")
    ax.set_xlabel("optimizer.lr (one trial per point, one seed)")
    ax.set_ylabel(header[col])
    ax.grid(alpha=0.3)
    return _finish(name, fig, ax)


def _finish(name: str, fig, ax) -> Path:
    ax.set_title(f"experiment={name}\nmeasured 2026-12-02 by scripts/run_presets.py on a 2-core CPU", fontsize=9)
    fig.tight_layout()
    out = LESSONS / "img" / f"{name}.png"
    out.parent.mkdir(exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


if __name__ == "__main__":
    names = sys.argv[1:] or sorted(p.stem for p in LESSONS.glob("*.md") if p.stem != "index")
    for lesson in names:
        print(draw(lesson))
