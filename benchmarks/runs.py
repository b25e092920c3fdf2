"""Whole commands against the floor every PyTorch process pays: `figures`, `small-runs`, `cli`, `sweep`.

    figures     a 20-job 1-epoch sweep until its last figure exists (TRAINLAB_FIGURES=wait) and until
                it returns (figures still drawing), against the floor. Target: ≤ 2.5x until figures exist.
    small-runs  the small commands of issue 15 (train, a 20-job sweep, check, inspect, gradcheck,
                lr-find) against the floor. Targets 1.5x, 3x, 1.5x each.
    cli         answers without training (--help, --version, list, bad input) against
                `python -c "import torch"`. Target: every row ≤ 0.5x.
    sweep       N tiny jobs three ways: one process (-m), N processes one after another, joblib.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys

from benchmarks import processes as P
from benchmarks.common import (FLOOR_NAME, Report, add_output_options, command_line, finish, floor_cmd, fmt,
                               git_commit, table, trainlab_cmd)

QUIET = ["trainer.progress=off"]
WAIT = {"TRAINLAB_FIGURES": "wait"}


def _report(key, title, args, argv, cases, t, load, ref, targets, summary_of, notes=(), cpu=False) -> int:
    header, rows = P.case_rows(cases, t, ref, targets)
    detail = [P.method_note(args.runs, args.blocks, args.warmup), *notes, "", *table(header, rows, "lrrrrrl")]
    summary = {}
    for name, label in summary_of.items():
        r = P.paired_ratio(t, name, ref)
        summary[label] = fmt(r) + (f" ({'met' if r <= targets[name] else 'missed'} ≤ {targets[name]})"
                                   if name in targets else "")
        if cpu:
            summary[label.replace("wall", "CPU") if "wall" in label else f"{label} (CPU)"] = \
                fmt(P.paired_ratio(t, name, ref, cpu=True))
    return finish(Report(key, title, args.label or git_commit(), command_line(argv), summary, detail, load),
                  args.out)


# ------------------------------------------------------------------ figures

def figures_cases(jobs: int) -> list[P.Case]:
    sweep = [*trainlab_cmd(), "train", "-m", f"seed=range({jobs})", "trainer.epochs=1", *QUIET, "hydra.sweep.dir={dir}"]
    return [P.Case(FLOOR_NAME, floor_cmd()),
            P.Case(f"{jobs}-job sweep, until its figures exist (TRAINLAB_FIGURES=wait)", sweep, WAIT),
            P.Case(f"{jobs}-job sweep, until it returns (figures drawn in the background)", sweep)]


def run_figures(args, argv) -> int:
    cases = figures_cases(args.jobs)
    t, load = P.measure(cases, args.runs, args.warmup, args.blocks)
    waited = cases[1].name
    return _report("figures", "A sweep until its figures exist, against the floor", args, argv, cases, t, load,
                   FLOOR_NAME, {waited: args.target}, {waited: "wall ÷ floor (figures exist)",
                                                         cases[2].name: "wall ÷ floor (returned)"},
                   ["The sweep is `trainlab train -m 'seed=range(N)' trainer.epochs=1 trainer.progress=off`; "
                    "the returned case's CPU time leaves out its detached figure drawer."], cpu=True)


# ------------------------------------------------------------------ small-runs

def small_cases(jobs: int) -> tuple[list[P.Case], dict[str, float]]:
    tl = trainlab_cmd()
    cases = [P.Case(FLOOR_NAME, floor_cmd())]
    targets = {}
    for name, argv, target, env in [
        ("trainlab train trainer.epochs=1", [*tl, "train", "trainer.epochs=1", "hydra.run.dir={dir}"], 1.5, {}),
        ("trainlab train trainer.epochs=1, until its figures exist", [*tl, "train", "trainer.epochs=1", "hydra.run.dir={dir}"], None, WAIT),
        (f"trainlab train -m 'seed=range({jobs})' trainer.epochs=1",
         [*tl, "train", "-m", f"seed=range({jobs})", "trainer.epochs=1", "hydra.sweep.dir={dir}"], 3.0, {}),
        (f"trainlab train -m 'seed=range({jobs})' trainer.epochs=1, until its figures exist",
         [*tl, "train", "-m", f"seed=range({jobs})", "trainer.epochs=1", "hydra.sweep.dir={dir}"], None, WAIT),
        ("trainlab check", [*tl, "check", "--out", "{dir}"], 1.5, {}),
        ("trainlab inspect", [*tl, "inspect", "--out", "{dir}"], 1.5, {}),
        ("trainlab gradcheck", [*tl, "gradcheck", "--out", "{dir}"], 1.5, {}),
        ("trainlab lr-find", [*tl, "lr-find", "--out", "{dir}"], 1.5, {}),
    ]:
        cases.append(P.Case(name, argv, env, may_fail=name in ("trainlab check", "trainlab gradcheck")))
        if target is not None:
            targets[name] = target
    return cases, targets


def run_small(args, argv) -> int:
    cases, targets = small_cases(args.jobs)
    cases = [c for c in cases if c.name == FLOOR_NAME or not args.only or any(o in c.name for o in args.only)]
    t, load = P.measure(cases, args.runs, args.warmup, args.blocks)
    return _report("small-runs", "Small experiments end to end, against the floor", args, argv, cases, t, load,
                   FLOOR_NAME, targets, {c.name: c.name for c in cases if c.name in targets},
                   ["check and gradcheck exit 1 when a check fails: still measured. The `until its "
                    "figures exist` rows run with TRAINLAB_FIGURES=wait."])


# ------------------------------------------------------------------ cli

def cli_cases() -> list[P.Case]:
    tl = trainlab_cmd()
    rows = [("trainlab --version", ["--version"]), ("trainlab --help", ["--help"]),
            ("trainlab train --help", ["train", "--help"]), ("trainlab resume --help", ["resume", "--help"]),
            ("trainlab list optimizer", ["list", "optimizer"]),
            ("trainlab train optimizer.lr=-1 (bad value)", ["train", "optimizer.lr=-1"]),
            ("trainlab train optimizer=adamm (bad option)", ["train", "optimizer=adamm"]),
            ("trainlab train init=xavier +init.std=0.5 (unknown key)", ["train", "init=xavier", "+init.std=0.5"]),
            ("trainlab train -m norm=none,instancenorm (bad sweep job)", ["train", "-m", "norm=none,instancenorm"])]
    return [P.Case("import torch", [sys.executable, "-c", "import torch"]),
            *(P.Case(name, [*tl, *a], may_fail=True) for name, a in rows)]


def run_cli(args, argv) -> int:
    cases = cli_cases()
    t, load = P.measure(cases, args.runs, args.warmup, args.blocks)
    targets = {c.name: 0.5 for c in cases[1:]}
    worst = max(cases[1:], key=lambda c: P.paired_ratio(t, c.name, "import torch"))
    return _report("cli", "CLI answers without training, against `import torch`", args, argv, cases, t, load,
                   "import torch", targets, {worst.name: f"slowest: {worst.name} ÷ import torch"})


# ------------------------------------------------------------------ sweep

def sweep_cases(jobs: int) -> list[P.Case]:
    tl = trainlab_cmd()
    common = ["trainer.epochs=1", *QUIET]
    # the separate processes: one shell loop, so hyperfine times all of them as one command
    loop = f"for i in $(seq 0 {jobs - 1}); do {' '.join(tl)} train seed=$i {' '.join(common)} " \
           "hydra.run.dir={dir}/$i >/dev/null || exit 1; done"
    cases = [P.Case(f"one process: -m seed=range({jobs})",
                    [*tl, "train", "-m", f"seed=range({jobs})", *common, "hydra.sweep.dir={dir}"], WAIT),
             P.Case(f"{jobs} processes one after another", ["sh", "-c", loop], WAIT)]
    if importlib.util.find_spec("hydra_plugins.hydra_joblib_launcher") is not None:
        cases.append(P.Case("joblib launcher", [*tl, "train", "-m", f"seed=range({jobs})", *common,
                                                "hydra/launcher=joblib", "hydra.sweep.dir={dir}"], WAIT))
    return cases


def run_sweep(args, argv) -> int:
    cases = sweep_cases(args.jobs)
    t, load = P.measure(cases, args.runs, args.warmup, args.blocks)
    ref = cases[0].name
    header, rows = P.case_rows(cases, t, ref)
    per_job = [[c.name, f"{args.jobs / t[c.name].wall_median * 3600:,.0f}", f"{t[c.name].wall_median / args.jobs:.2f}"]
               for c in cases]
    detail = [P.method_note(args.runs, args.blocks, args.warmup),
              f"{args.jobs} tiny jobs (the default run, 1 epoch), TRAINLAB_FIGURES=wait.", "",
              *table(header[:5], [r[:5] for r in rows]), "", *table(["mode", "runs / hour", "s / job"], per_job)]
    summary = {f"{c.name} ÷ one process": fmt(P.paired_ratio(t, c.name, ref)) for c in cases[1:]}
    return finish(Report("sweep", "Sweep throughput", args.label or git_commit(), command_line(argv), summary,
                         detail, load), args.out)


def add_parsers(sub) -> None:
    def common(p, runs):
        P.add_process_options(p, runs)
        add_output_options(p)

    p = sub.add_parser("figures", help="a sweep until its figures exist vs the floor (target ≤ 2.5x)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=20, help="jobs in the sweep (default 20)")
    p.add_argument("--target", type=float, default=2.5, help="wall ÷ floor until figures exist (default 2.5)")
    common(p, 3)
    p.set_defaults(run=run_figures)

    p = sub.add_parser("small-runs", help="small commands end to end vs the floor (issue 15's targets)")
    p.add_argument("--jobs", type=int, default=20, help="jobs in the sweep case (default 20)")
    p.add_argument("--only", action="append", default=[], metavar="TEXT",
                   help="only the cases whose name contains TEXT (and the floor); repeatable")
    common(p, 3)
    p.set_defaults(run=run_small)

    p = sub.add_parser("cli", help="CLI answers without training vs `import torch` (target ≤ 0.5x)")
    common(p, 7)
    p.set_defaults(run=run_cli)

    p = sub.add_parser("sweep", help="N tiny jobs: one process, N processes, joblib")
    p.add_argument("--jobs", type=int, default=20, help="jobs per sweep (default 20)")
    common(p, 1)
    p.set_defaults(run=run_sweep)
