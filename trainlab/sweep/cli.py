"""`trainlab table`: turn sweep folders into an ablation table and a figure.

    trainlab table outputs/sweeps/<sweep> [more sweeps...] [--metric M ...]
        [--by KEY ...] [--baseline K=V[,K=V]] [--sort M]
        [--format terminal|markdown|csv|latex] [--out DIR] [--no-figure]

The table goes to stdout in the chosen format (so `--format csv > t.csv`
works), warnings go to stderr, and table.md, table.csv, curves.png and table.png
(trainlab.sweep.table_figure) are written into the sweep folder (or --out), and table.tex with
--format latex. A table of several sweep folders is only printed unless --out says where to write
it: each sweep folder keeps its own table.md. A job named twice (`S S`, sweeps sharing job
folders) counts once. The CLI calls `write_sweep_report` at the end of every multirun to write the
same files. A sweep may carry its own columns and baseline (`hydra.sweeper.table`, set by
experiment presets); they are the defaults for that folder. When an override narrowed the sweep
so that the preset's baseline row is not in it, the first row is the baseline, with a note.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

from trainlab.errors import ConfigError
from trainlab.sweep.aggregate import Table, build_table, swept_keys
from trainlab.sweep.derived import SYNTAX
from trainlab.sweep.metric import DEFAULT_METRICS
from trainlab.sweep.render import FORMATS, print_terminal, render, render_csv, render_markdown
from trainlab.sweep.runs import RunRecord, load_sweep, load_sweeps
from trainlab.sweep.search import read_search_file
from trainlab.sweep.search_table import edge_warnings


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    # argparse prints usage and exits on a bad argument; we want one line and
    # a return code, since table_main is also called from inside the main CLI
    def error(self, message: str):
        raise _UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="trainlab table",
        description="Aggregate a sweep folder into an ablation table (mean ± std over seeds and CV folds) and a figure.",
    )
    parser.add_argument("sweep_dirs", nargs="+", metavar="SWEEP_DIR", help="sweep folder(s), e.g. outputs/sweeps/<sweep>")
    parser.add_argument(
        "--metric", action="extend", nargs="+", default=None, metavar="M",
        help="columns: summary.json paths (best.val_acc, test.acc, final.train_loss, epochs_run, wall_time_s, ...) "
        f"or metrics:<column> for the last value of a metrics.csv column, or derived from the curves: {SYNTAX} "
        f"(quote them in the shell); default: {' '.join(DEFAULT_METRICS)}, plus EMA/Polyak/TTA test accuracy "
        "when the jobs report one and the swept groups' derived metric (gap for regularizer/augment)",
    )
    parser.add_argument(
        "--by", action="extend", nargs="+", default=None, metavar="KEY",
        help="group rows by these keys instead of the swept ones; all other differences are averaged over",
    )
    parser.add_argument("--baseline", metavar="K=V[,K=V]", help="add a column with each row's difference to this row on the first metric")
    parser.add_argument(
        "--sort", metavar="M",
        help="order rows best first on this metric: descending for accuracies, ascending for everything else (losses, time)",
    )
    parser.add_argument("--format", choices=FORMATS, default="terminal", help="how to print the table (default: terminal)")
    parser.add_argument("--out", metavar="DIR", help="write table.md, table.csv, curves.png and table.png (and "
                        "table.tex with --format latex) here instead of the sweep folder; a table of several "
                        "sweep folders is written only here (without --out it is printed only)")
    parser.add_argument("--no-figure", action="store_true", help="do not draw curves.png and table.png")
    parser.add_argument("--where", action="append", default=None, metavar="K=V",
                        help="keep only the jobs with this value (repeatable, all must hold): an override or config "
                        "key (optimizer=adam, optimizer.lr=0.1), status=completed, or tags=T (jobs tagged T)")
    return parser


def table_main(argv: list[str]) -> int:
    try:
        args = build_parser().parse_args(argv)
        records = load_sweeps(args.sweep_dirs)
        folders = list(dict.fromkeys(Path(d).resolve() for d in args.sweep_dirs))
        if args.where:
            from trainlab.sweep.where import keep_where

            records = keep_where(records, args.where)
        own = table_settings(Path(args.sweep_dirs[0]))
        metrics = _split(args.metric) or own.get("metrics") or None
        searched = _searched(args.sweep_dirs)
        search = searched is not None
        if args.baseline or args.by:
            table, notes = build_table(records, metrics, _split(args.by), args.baseline, args.sort, search=search), []
        else:
            table, notes = table_with_preset_baseline(records, metrics, own.get("baseline"), args.sort, search=search)
        table.footer += study_lines(Path(args.sweep_dirs[0]))
        # several sweeps' table is written only where asked: each folder keeps its own table.md
        out = Path(args.out) if args.out else (Path(args.sweep_dirs[0]) if len(folders) == 1 else None)
        if out is not None and out.exists() and not out.is_dir():
            raise ConfigError("--out", str(out), "it is a file; pass a folder (created if missing)")
        if out is not None:  # made now: a folder that cannot be is one line before the table and its warnings
            try:
                out.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise ConfigError("--out", str(out), f"a folder that can be created and written ({err.strerror})")
    except (ConfigError, _UsageError) as err:
        print(f"trainlab table: {err}", file=sys.stderr)
        return 2
    except SystemExit as done:  # --help
        return done.code if isinstance(done.code, int) else 0

    warnings = notes + table.warnings + edge_warnings(records, searched, metric=table.metrics[0].spec)
    if args.format == "terminal":
        print_terminal(table)
    else:
        sys.stdout.write(render(table, args.format))
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)

    if out is None:
        print(f"printed only: a table of {len(folders)} sweep folders is written where --out DIR says "
              "(each sweep folder keeps its own table.md)", file=sys.stderr)
        return 0
    title = ", ".join(p.name for p in folders)
    try:
        written = write_report(table, warnings, out, figure=not args.no_figure, title=title,
                               latex=args.format == "latex", ranges=searched)
    except OSError as err:
        print(f"trainlab table: could not write the report into {out}: {err}", file=sys.stderr)
        return 1
    print(f"wrote {', '.join(p.name for p in written)} to {out}", file=sys.stderr)
    return 0


def _searched(sweep_dirs: list[str]) -> dict[str, tuple[float, float, bool]] | None:
    """The random-search ranges recorded in the sweep folders (the widest range per key
    when folders of a coarse and a fine search are combined); None when none has any."""
    ranges: dict[str, tuple[float, float, bool]] = {}
    found = [r for d in sweep_dirs if (r := read_search_file(Path(d))) is not None]
    for recorded in found:
        for key, (low, high, log) in recorded.items():
            old = ranges.get(key, (low, high, log))
            ranges[key] = (min(low, old[0]), max(high, old[1]), log and old[2])
    return ranges if found else None


def _split(values: list[str] | None) -> list[str] | None:
    """Accept both `--metric a b` and `--metric a,b`."""
    if values is None:
        return None
    return [v for value in values for v in value.split(",") if v]


def write_report(table: Table, warnings: list[str], out_dir: Path, figure: bool = True, title: str = "",
                 latex: bool = False, tables: bool = True,
                 ranges: dict[str, tuple[float, float, bool]] | None = None) -> list[Path]:
    """Write table.md (with the warnings under it), table.csv, curves.png, table.png and, with `latex`,
    table.tex (`tables=False`: the figures only). `ranges`: a search's ranges, for table.png's log axes."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    if tables:
        markdown = render_markdown(table)
        if warnings:
            markdown += "\n**Warnings**\n\n" + "".join(f"- {w}\n" for w in warnings)
        written = [out_dir / "table.md", out_dir / "table.csv"]
        written[0].write_text(markdown)
        written[1].write_text(render_csv(table))
        if latex:
            written.append(out_dir / "table.tex")
            written[-1].write_text(render(table, "latex"))
    if figure:
        # imported here: matplotlib takes a sweep ~0.6 s to import, and the CLI draws in the background
        from trainlab.sweep.figure import plot_curves
        from trainlab.sweep.table_figure import plot_table

        for png in (plot_curves(table, out_dir / "curves.png", title=title),
                    plot_table(table, out_dir / "table.png", title=title, ranges=ranges)):
            if png is not None:
                written.append(png)
    return written


def write_sweep_report(
    sweep_dir: str | Path, searched: dict[str, tuple[float, float, bool]] | None = None,
    figure: bool = True, tables: bool = True
) -> Path:
    """Write table.md, table.csv and curves.png into a finished sweep's folder; returns
    the path of table.md. The columns are the defaults unless the sweep set its own
    (`hydra.sweeper.table`); a random search's rows come best first.

    `searched` holds the random-search ranges (key -> (low, high, log)) for the
    edge warning; without it they are read from the folder's search.yaml, and
    failing that inferred from the jobs' values. `figure` / `tables` pick the parts written
    (the CLI writes the tables, and its background figure drawer the figure).
    """
    sweep_dir = Path(sweep_dir)
    records: list[RunRecord] = load_sweep(sweep_dir)
    recorded = read_search_file(sweep_dir)
    settings = table_settings(sweep_dir)
    metrics = settings.get("metrics") or None
    # a random search's rows are unrelated samples: best first reads better than sampling order
    sort = (metrics or DEFAULT_METRICS)[0] if recorded is not None else None
    table, notes = table_with_preset_baseline(records, metrics, settings.get("baseline"), sort, search=recorded is not None)
    if tables:  # the figure drawer needs no importances (Optuna's evaluator imports scikit-learn: seconds)
        table.footer += study_lines(sweep_dir)
    ranges = searched if searched is not None else recorded
    warnings = notes + table.warnings + edge_warnings(records, ranges)
    write_report(table, warnings, sweep_dir, figure=figure, title=sweep_dir.name, tables=tables, ranges=ranges)
    return sweep_dir / "table.md"


def study_lines(sweep_dir: Path) -> list[str]:
    """An Optuna sweep's closing lines (importances, best trial); [] for any other sweep folder."""
    from trainlab.sweep.optuna_search import TRIALS_FILE

    if not (sweep_dir / TRIALS_FILE).is_file():
        return []
    from trainlab.sweep.optuna_search import study_summary

    return study_summary(sweep_dir)


def table_settings(sweep_dir: Path) -> dict:
    """The sweep's own table columns (`hydra.sweeper.table` of trainlab's sweeper, as an
    experiment preset sets them), read from the multirun.yaml Hydra saved; {} when absent."""
    try:
        saved = yaml.safe_load((sweep_dir / "multirun.yaml").read_text())
        settings = saved["hydra"]["sweeper"].get("table") or {}
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError):
        return {}
    return settings if isinstance(settings, dict) else {}


def table_with_preset_baseline(records: list[RunRecord], metrics: list[str] | None, baseline: str | None,
                               sort: str | None, search: bool = False) -> tuple[Table, list[str]]:
    """The table with the baseline a sweep's preset names, and notes. An override may have narrowed
    the sweep (`experiment=batchnorm_lr optimizer.lr=2.0`): a baseline key that no longer varies is
    dropped when every job has the preset's value for it, and when the preset's row is not in the
    sweep at all the first row (in sweep order) is the baseline instead, with a note saying so."""
    if not baseline:
        return build_table(records, metrics, sort=sort, search=search), []
    try:
        return build_table(records, metrics, baseline=_narrowed(baseline, records), sort=sort, search=search), []
    except ConfigError as err:
        if err.key != "--baseline":
            raise
    first = build_table(records, metrics).rows[0]
    note = f"the preset's baseline {baseline} does not pick one row of this sweep (an override changed its factors)"
    if first.values and None not in first.values.values():
        try:
            text = ",".join(f"{k}={v}" for k, v in first.values.items())
            return build_table(records, metrics, baseline=text, sort=sort, search=search), \
                [f"{note}: the differences are to the first row, {first.label}"]
        except ConfigError:
            pass
    return build_table(records, metrics, sort=sort, search=search), [f"{note}: no differences are shown"]


def _narrowed(baseline: str, records: list[RunRecord]) -> str:
    """The baseline without the keys that are not row keys and that every job already has at the
    baseline's value (the sweep was narrowed to the baseline's value of that key)."""
    keys = swept_keys(records)
    pairs = [pair.partition("=") for pair in re.split(r",(?=[\w.+/@-]+=)", baseline)]
    kept = [f"{k}={v}" for k, _, v in pairs
            if k.strip() in keys or not all(_equal(r.lookup(k.strip()), v.strip()) for r in records)]
    return ",".join(kept) if kept and len(kept) < len(pairs) else baseline


def _equal(value: str | None, wanted: str) -> bool:
    if value == wanted:
        return True
    try:
        return value is not None and float(value) == float(wanted)
    except ValueError:
        return False
