"""Print an ablation table: rich terminal table, Markdown, CSV or LaTeX.

Markdown, terminal and LaTeX show what a reader wants (accuracies as
percentages, "mean ± std [95% CI]", Δ to the baseline with its interval, ≈ for
a row noise cannot tell from the baseline, status words for failed rows) and,
under the table, the lines that say how to read the statistics. CSV is for
programs: raw numbers in the units of summary.json (accuracies as fractions),
mean, std and interval ends in separate columns at full precision and one column
per job status, so it parses back without string surgery.
"""
from __future__ import annotations

import csv
import io

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table as RichTable
from rich.text import Text

from trainlab.sweep.aggregate import Row, Table
from trainlab.sweep.metric import Metric
from trainlab.sweep.runs import STATUSES
from trainlab.sweep.significance import NOT_DISTINGUISHABLE, interval_text, p_text

FORMATS = ("terminal", "markdown", "csv", "latex")


def render(table: Table, fmt: str) -> str:
    if fmt == "terminal":
        return render_terminal(table)
    if fmt == "markdown":
        return render_markdown(table)
    if fmt == "csv":
        return render_csv(table)
    if fmt == "latex":
        return render_latex(table)
    raise ValueError(f"unknown table format {fmt!r}; choose one of {', '.join(FORMATS)}")


def header(table: Table) -> list[str]:
    names = list(table.keys) or ["configuration"]
    names += [m.label for m in table.metrics]
    if table.baseline is not None:
        names += [delta_label(table.metrics[0]), "p (Holm)"]
    return names + ["n", "notes"]


def delta_label(metric: Metric) -> str:
    # differences of percentages are percentage points, not percent
    if metric.kind == "percent":
        return f"Δ {metric.label.removesuffix(' (%)').removesuffix(' (pp)')} vs baseline (pp)"
    return f"Δ {metric.label} vs baseline"


def text_rows(table: Table) -> list[list[str]]:
    return [_text_row(table, row) for row in table.rows]


def _text_row(table: Table, row: Row) -> list[str]:
    cells = [v if v is not None else "—" for v in row.values.values()] or [row.label]
    for metric in table.metrics:
        cells.append(cell_text(row, metric))
    if table.baseline is not None:
        cells += _delta_cells(table, row)
    note = "; ".join(t for t in ("best" if row.best else "", row.note()) if t)
    return cells + [str(row.n), note]


def _delta_cells(table: Table, row: Row) -> list[str]:
    """"+4.00 [+1.52, +6.48]" and its Holm p; "≈ …" when noise cannot tell it from the baseline."""
    if row is table.baseline:
        return ["baseline", ""]
    if row.delta is None:
        return ["—", ""]
    first, c = table.metrics[0], row.comparison
    text = first.format(row.delta, signed=True)
    if c is None:
        return [text, ""]
    text = f"{text} {interval_text(first, c.low, c.high, signed=True)}".rstrip()
    mark = "" if c.distinguishable else f"{NOT_DISTINGUISHABLE} "
    return [mark + text, p_text(c.p_holm)]


def cell_text(row: Row, metric: Metric) -> str:
    if row.n == 0:
        return row.status_text()  # e.g. "failed 2/2": the failure is the result
    cell = row.cells[metric.spec]
    if cell.mean is None:
        # the jobs completed but never reached the threshold, or never recorded this metric
        return f"not reached {cell.not_reached}/{row.n}" if cell.not_reached else "—"
    text = metric.format(cell.mean)
    text = text if cell.std is None else f"{text} ± {metric.format(cell.std)}"
    interval = cell.interval if metric.lead else None
    if interval is not None:
        text += " " + interval_text(metric, *interval)
    # the mean is over the jobs that got there: say how many did not
    return f"{text} ({cell.not_reached}/{row.n} not reached)" if cell.not_reached else text


def terminal_table(table: Table) -> RichTable:
    n_keys = len(table.keys) or 1
    names = header(table)
    out = RichTable(header_style="bold")
    for i, name in enumerate(names):
        numeric = n_keys <= i < len(names) - 1
        out.add_column(name, justify="right" if numeric else "left")
    for row, cells in zip(table.rows, text_rows(table)):
        style = "red" if row.n == 0 else ""
        # Text() rather than plain strings: values like "[l2,dropout]" are not markup
        out.add_row(*(Text(c, style=style) for c in cells[:-1]), Text(cells[-1], style="yellow"))
    return out


def print_terminal(table: Table, console: Console | None = None) -> None:
    """Print the rich table; when the output is a pipe or file rather than a
    terminal, widen the console to fit the table so cells are never wrapped."""
    console = console or Console()
    rich_table = terminal_table(table)
    if not console.is_terminal:
        needed = Measurement.get(console, console.options.update_width(10_000), rich_table).maximum
        console.width = max(console.width, needed)
    console.print(rich_table)
    for line in table.footer:
        console.print(Text(line, style="dim"))


def render_terminal(table: Table) -> str:
    console = Console(file=io.StringIO(), color_system=None)
    print_terminal(table, console)
    return console.file.getvalue()


def render_markdown(table: Table) -> str:
    n_keys = len(table.keys) or 1
    names = header(table)
    align = [":--"] * n_keys + ["--:"] * (len(names) - n_keys - 1) + [":--"]
    lines = [_md_line(names), _md_line(align)] + [_md_line(r) for r in text_rows(table)]
    if table.footer:
        lines += [""] + [f"- {line}" for line in table.footer]
    return "\n".join(lines) + "\n"


def _md_line(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def render_csv(table: Table) -> str:
    found = {s for row in table.rows for s in row.counts()}
    statuses = [s for s in STATUSES if s != "completed"] + sorted(found - set(STATUSES))
    names = (list(table.keys) or ["configuration"]) + ["n", "jobs"] + statuses
    for metric in table.metrics:
        names += [f"{metric.spec}_{part}" for part in ("mean", "std", "ci_low", "ci_high")]
        if _reach(metric):
            names.append(f"{metric.spec}_not_reached")
    if table.baseline is not None:
        delta = f"delta_{table.metrics[0].spec}"
        names += [delta, f"{delta}_ci_low", f"{delta}_ci_high", f"{delta}_test", f"{delta}_p", f"{delta}_p_holm",
                  f"{delta}_distinguishable"]
    names.append("best")

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(names)
    for row in table.rows:
        counts = row.counts()
        line = [v if v is not None else "" for v in row.values.values()] or [row.label]
        line += [row.n, len(row.records)] + [counts.get(s, 0) for s in statuses]
        for metric in table.metrics:
            cell = row.cells[metric.spec]
            low, high = cell.interval or (None, None)
            line += [_number(cell.mean), _number(cell.std), _number(low), _number(high)]
            line += [cell.not_reached] if _reach(metric) else []
        if table.baseline is not None:
            c = row.comparison
            line.append(_number(row.delta))
            line += ["", "", "", "", "", ""] if c is None else [
                _number(c.low), _number(c.high), c.test, _number(c.p), _number(c.p_holm), int(c.distinguishable)]
        line.append(int(row.best))
        writer.writerow(line)
    return buf.getvalue()


def _reach(metric: Metric) -> bool:
    return metric.derived is not None and metric.derived.op is not None


def _number(value: float | None) -> str:
    return "" if value is None else repr(value)  # repr round-trips exactly


def render_latex(table: Table) -> str:
    n_keys = len(table.keys) or 1
    names = header(table)
    columns = "l" * n_keys + "r" * (len(names) - n_keys - 1) + "l"
    lines = [
        "% needs \\usepackage{booktabs}",
        f"\\begin{{tabular}}{{{columns}}}",
        "\\toprule",
        _tex_line(names),
        "\\midrule",
        *(_tex_line(r) for r in text_rows(table)),
        "\\bottomrule",
        *(_tex_line([f"\\multicolumn{{{len(names)}}}{{p{{\\linewidth}}}}{{\\footnotesize {_tex(line)}}}"], escape=False)
          for line in table.footer),
        "\\end{tabular}",
    ]
    return "\n".join(lines) + "\n"


_TEX_ESCAPES = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
    "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "±": r"$\pm$", "Δ": r"$\Delta$", "—": "--", "≈": r"$\approx$", "≥": r"$\geq$", "α": r"$\alpha$",
    "<": r"$<$", ">": r"$>$",  # text-mode < and > print as ¡ and ¿ in LaTeX's default font encoding
}


def _tex(text: str) -> str:
    return "".join(_TEX_ESCAPES.get(ch, ch) for ch in text)


def _tex_line(cells: list[str], escape: bool = True) -> str:
    return " & ".join(_tex(c) if escape else c for c in cells) + r" \\"
