"""trainlab commands against each other or against plain PyTorch: `stacked`, `threads`, `eval`.

    stacked   a seed sweep with hydra/launcher=vectorized against the same sweep with the basic
              launcher, both until their figures exist. Targets: ≤ 0.5 at 8 seeds, ≤ 0.35 at 32.
    threads   trainer.threads=auto against 1 and 2 for the default run, arch=cnn and an 8-seed
              sweep. Target: auto ≤ 1.05x the best fixed count.
    eval      `trainlab train dataset=mnist arch=cnn` against benchmarks/plain_cnn.py, the same
              training and evaluation in plain PyTorch, by the whole process's CPU time.
              Target: trainlab ≤ 1.15x plain.
"""
from __future__ import annotations

import argparse
import gzip
import os
import shutil
import sys
from pathlib import Path

from benchmarks import processes as P
from benchmarks.common import (Report, add_output_options, command_line, finish, fmt, git_commit, met, table,
                               trainlab_cmd)

WAIT = {"TRAINLAB_FIGURES": "wait"}
TARGETS_STACKED = {8: 0.5, 32: 0.35}


def _verdict(value: float, limit: float | None) -> str:
    return fmt(value) + ("" if limit is None else f" ({'met' if value <= limit else 'missed'} ≤ {limit})")


def _acc(t: P.Timings) -> str:
    accs = [100 * a for a in t.test_acc]
    return f"{P.mean(accs):.2f} ± {P.spread(accs):.2f} (n={len(accs)})" if accs else "—"


def _detail(args, t, cases, notes, extra_table) -> list[str]:
    rows = [[c.name, f"{t[c.name].wall_median:.2f} ± {P.spread(t[c.name].wall):.2f}", f"{t[c.name].cpu_median:.2f}",
             _acc(t[c.name])] for c in cases]
    return [P.method_note(args.runs, args.blocks, args.warmup), *notes, "",
            *table(["case", "wall (s)", "CPU (s)", "test acc (%), runs' summary.json"], rows), "", *extra_table]


# ------------------------------------------------------------------ stacked

def run_stacked(args, argv) -> int:
    tl, cases = trainlab_cmd(), []
    for n in args.seeds:
        base = [*tl, "train", "-m", f"seed=range({n})", "trainer.progress=off", "hydra.sweep.dir={dir}", *args.extra]
        cases += [P.Case(f"{n} seeds, hydra/launcher=vectorized", [*base, "hydra/launcher=vectorized"], WAIT),
                  P.Case(f"{n} seeds, basic launcher", base, WAIT)]
    t, load = P.measure(cases, args.runs, args.warmup, args.blocks)
    rows, summary = [], {}
    for n in args.seeds:
        vec, basic = f"{n} seeds, hydra/launcher=vectorized", f"{n} seeds, basic launcher"
        wall, cpu = P.paired_ratio(t, vec, basic), P.paired_ratio(t, vec, basic, cpu=True)
        limit = TARGETS_STACKED.get(n)
        rows.append([str(n), fmt(wall), fmt(cpu), f"≤ {limit}" if limit else "", met(wall, limit)])
        summary[f"{n} seeds: vectorized ÷ basic (wall)"] = _verdict(wall, limit)
    notes = [f"`trainlab train -m 'seed=range(N)' trainer.progress=off {' '.join(args.extra)}` with and without "
             "`hydra/launcher=vectorized`, both with TRAINLAB_FIGURES=wait (timed until the figures exist)."]
    detail = _detail(args, t, cases, notes, table(["seeds", "vectorized ÷ basic (wall)", "(CPU)", "target", "met"],
                                                  rows, "rrrrl"))
    return finish(Report("stacked", "Seeds stacked (hydra/launcher=vectorized) against the basic launcher",
                         args.label or git_commit(), command_line(argv), summary, detail, load), args.out)


# ------------------------------------------------------------------ threads

WORKLOADS = {"default": [], "cnn": ["arch=cnn"], "sweep8": ["-m", "seed=range(8)"]}


def run_threads(args, argv) -> int:
    tl, cases = trainlab_cmd(), []
    for w in args.workloads:
        out = "hydra.sweep.dir={dir}" if "-m" in WORKLOADS[w] else "hydra.run.dir={dir}"
        for n in ["auto", *map(str, args.counts)]:
            cases.append(P.Case(f"{w}, threads={n}", [*tl, "train", *WORKLOADS[w], "trainer.progress=off",
                                                      f"trainer.threads={n}", out, *args.extra], WAIT))
    t, load = P.measure(cases, args.runs, args.warmup, args.blocks)
    rows, summary = [], {}
    for w in args.workloads:
        ratios = {}
        for kind in ("wall", "cpu"):
            auto = getattr(t[f"{w}, threads=auto"], kind)
            fixed = [getattr(t[f"{w}, threads={n}"], kind) for n in args.counts]
            ratios[kind] = P.median([a / min(f) for a, *f in zip(auto, *fixed)])  # per round: auto ÷ best
        best = min(args.counts, key=lambda n: t[f"{w}, threads={n}"].wall_median)
        rows.append([w, str(best), fmt(ratios["wall"]), fmt(ratios["cpu"]), met(ratios["wall"], args.target)])
        summary[f"{w}: auto ÷ best (wall)"] = _verdict(ratios["wall"], args.target)
    notes = [f"Workloads: default = `trainlab train trainer.progress=off`, cnn = + `arch=cnn`, sweep8 = + "
             f"`-m 'seed=range(8)'` (basic launcher){'; extra overrides ' + ' '.join(args.extra) if args.extra else ''}; "
             "every command with TRAINLAB_FIGURES=wait. Best = the fixed count with the lower time in that round (wall and CPU each)."]
    detail = _detail(args, t, cases, notes, table(["workload", "best fixed (median)", "auto ÷ best (wall)", "(CPU)",
                                                   "met (wall)"], rows, "lrrrl"))
    return finish(Report("threads", "trainer.threads=auto against fixed thread counts", args.label or git_commit(),
                         command_line(argv), summary, detail, load), args.out)


# ------------------------------------------------------------------ eval

def prepare_mnist(source: Path, dest: Path) -> None:
    """MNIST's archives copied to dest/MNIST/raw and unpacked there (what torchvision reads with
    download=False), once and untimed; the source folder is only read."""
    raw = dest / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        if (raw / name).is_file():
            continue
        packed = source / "MNIST" / "raw" / f"{name}.gz"
        plain = source / "MNIST" / "raw" / name
        if plain.is_file():
            shutil.copyfile(plain, raw / name)
        elif packed.is_file():
            with gzip.open(packed) as f, open(raw / name, "wb") as g:
                shutil.copyfileobj(f, g)
        else:
            sys.exit(f"no MNIST there: {packed} (pass --data-source, a folder holding MNIST/raw)")


def run_eval(args, argv) -> int:
    prepare_mnist(args.data_source, args.data)
    tl, plain, cases = trainlab_cmd(), Path(__file__).with_name("plain_cnn.py"), []
    env = {**WAIT, "TRAINLAB_DATA": str(args.data)}
    sub_plain = ["--subset", str(args.train_subset)] if args.train_subset else []
    sub_tl = [f"dataset.subset={args.train_subset}"] if args.train_subset else []
    def name(who: str, e: int) -> str:
        return f"{who}, {e} epoch{'s' if e != 1 else ''}"

    for e in args.epochs:
        cases += [P.Case(name("plain PyTorch", e), [sys.executable, str(plain), "--data", str(args.data),
                                                       "--epochs", str(e), *sub_plain], env),
                  P.Case(name("trainlab", e), [*tl, "train", "dataset=mnist", "arch=cnn", f"trainer.epochs={e}",
                                                   "trainer.progress=off", "hydra.run.dir={dir}", *sub_tl, *args.extra],
                         env)]
    t, load = P.measure(cases, args.runs, args.warmup, args.blocks)
    rows, summary = [], {}
    for e in args.epochs:
        tr, pl = name("trainlab", e), name("plain PyTorch", e)
        cpu, wall = P.paired_ratio(t, tr, pl, cpu=True), P.paired_ratio(t, tr, pl)
        rows.append([str(e), fmt(cpu), fmt(wall), met(cpu, args.target)])
        summary[f"{e} epochs: trainlab ÷ plain (CPU)"] = _verdict(cpu, args.target)
    notes = ["trainlab: `trainlab train dataset=mnist arch=cnn trainer.epochs=E trainer.progress=off`"
             + (f" {' '.join(sub_tl + args.extra)}" if sub_tl or args.extra else "")
             + "; plain: `benchmarks/plain_cnn.py` (the same model, data split sizes, normalization, Adam lr 1e-3, "
             "batch 64; validation every epoch, test at the end). Both read the unpacked MNIST under "
             f"`{args.data}` and run with TRAINLAB_FIGURES=wait (trainlab's figures are in its time)."]
    detail = _detail(args, t, cases, notes, table(["epochs", "trainlab ÷ plain (CPU)", "(wall)", "met (CPU)"], rows, "rrrl"))
    return finish(Report("eval", "trainlab against a plain PyTorch script (MNIST CNN, whole process)",
                         args.label or git_commit(), command_line(argv), summary, detail, load), args.out)


def add_parsers(sub) -> None:
    def common(p, runs):
        P.add_process_options(p, runs)
        add_output_options(p)
        p.add_argument("extra", nargs="*", help="extra overrides for the trainlab commands (after --)")

    kw = {"description": __doc__, "formatter_class": argparse.RawDescriptionHelpFormatter}
    p = sub.add_parser("stacked", help="vectorized launcher ÷ basic launcher (targets ≤ 0.5 at 8, ≤ 0.35 at 32)", **kw)
    p.add_argument("--seeds", type=int, nargs="+", default=[8, 32], help="sweep sizes (default 8 32)")
    common(p, 3)
    p.set_defaults(run=run_stacked)

    p = sub.add_parser("threads", help="trainer.threads=auto ÷ the best fixed count (target ≤ 1.05)", **kw)
    p.add_argument("--workloads", nargs="+", choices=list(WORKLOADS), default=list(WORKLOADS))
    p.add_argument("--counts", type=int, nargs="+", default=[1, 2], help="fixed thread counts (default 1 2)")
    p.add_argument("--target", type=float, default=1.05)
    common(p, 3)
    p.set_defaults(run=run_threads)

    p = sub.add_parser("eval", help="trainlab ÷ plain PyTorch on MNIST CNN by CPU time (target ≤ 1.15)", **kw)
    p.add_argument("--epochs", type=int, nargs="+", default=[1, 3], help="epoch counts (default 1 3)")
    p.add_argument("--data-source", type=Path, default=Path(os.environ.get("TRAINLAB_DATA", "data")),
                   help="folder holding MNIST/raw, only read (default $TRAINLAB_DATA, else ./data)")
    p.add_argument("--data", type=Path, default=Path("/tmp/bdata"),
                   help="where the archives are unpacked and both read them (default /tmp/bdata)")
    p.add_argument("--train-subset", type=int, default=None,
                   help="train on N examples (smoke tests; the validation and test splits stay whole)")
    p.add_argument("--target", type=float, default=1.15)
    common(p, 3)
    p.set_defaults(run=run_eval)
