"""`python -m benchmarks SUBCOMMAND [options]`: every trainlab benchmark behind one entry point.

Nothing heavy is imported before a subcommand runs, so `--help` answers at once. Before any
subcommand runs, OMP_WAIT_POLICY=PASSIVE is set in this process (before torch is imported, for the
in-process comparators) and passed to every command a subcommand starts.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from benchmarks import compare, runs
from benchmarks.common import BENCHMARKS_MD, MALLOC_ENV, REPO, pin_omp_policy

EPILOG = ("throughput, profile and diag measure in this process (torch imported once); the others time whole "
          "commands with hyperfine. Each subcommand answers --help; --out writes its table into BENCHMARKS.md.")


def add_workload_options(p) -> None:
    p.add_argument("--workload", choices=["mlp", "cnn", "resnet18", "all"], default="all")
    p.add_argument("--reps", type=int, default=None, help="timed repetitions per comparator (default 11; quick 2)")
    p.add_argument("--warmup", type=int, default=1, help="untimed repetitions first (default 1)")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps per repetition (default per workload)")
    p.add_argument("--quick", action="store_true", help="tiny run for a smoke test: 2 reps of 5 steps")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default 2 on CPU)")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu or cuda")
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="C3 DataLoader workers on GPU")
    p.add_argument("--no-lightning", action="store_true", help="skip C4 and C4d")
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                   help="extra trainlab override for C2 (repeatable), e.g. trainer.diagnostics=off")
    p.add_argument("--no-malloc-tuning", action="store_true",
                   help="keep glibc's default malloc thresholds (more page-fault jitter on CPU)")
    p.add_argument("--include-gpu-only", action="store_true",
                   help="run GPU-only workloads (resnet18) on the CPU too: slow, for checking the code path")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0],
                                  epilog=EPILOG)
    sub = top.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")

    p = sub.add_parser("throughput", help="engine throughput against comparators C0..C4d (BENCHMARKS.md top part)",
                       description="Training throughput of trainlab's engine against comparators, side by side "
                                   "in one process; with --out it rewrites the top part of the results file.")
    add_workload_options(p)
    p.add_argument("--out", type=Path, nargs="?", const=BENCHMARKS_MD, default=None,
                   help="results file whose top part is rewritten (bare --out: BENCHMARKS.md); without it the "
                        "tables only print (--quick: written to a temp file)")
    p.add_argument("--render-only", action="store_true", help="rewrite --out from the data embedded in it")
    p.set_defaults(run="benchmarks.throughput", malloc=True)

    p = sub.add_parser("profile", help="cProfile of C2 and C1 epochs, then C2's per-step pieces",
                       description="Where C2's time goes: cProfile of one C2 and one C1 epoch and the engine's "
                                   "per-step pieces timed in isolation.")
    add_workload_options(p)
    p.set_defaults(run="benchmarks.parts", malloc=True)

    p = sub.add_parser("diag", help="live diagnostics' cost per training step (off, light, full)",
                       description="Overhead of live diagnostics per training step, variants interleaved in one process.")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (default 1: steady timings on a shared machine)")
    p.set_defaults(run="benchmarks.diag", malloc=False)

    runs.add_parsers(sub)
    compare.add_parsers(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    line = pin_omp_policy()
    if isinstance(args.run, str):  # in-process: import the module (and torch) only now
        if (getattr(args, "malloc", False) and not args.no_malloc_tuning and sys.platform.startswith("linux")
                and any(os.environ.get(k) != v for k, v in MALLOC_ENV.items())):
            # glibc reads its malloc thresholds at start-up: run again with them set
            os.execve(sys.executable, [sys.executable, "-m", "benchmarks", *argv], {**os.environ, **MALLOC_ENV, "PYTHONPATH": os.pathsep.join(
                         p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)})
        import importlib

        print(line, flush=True)
        return importlib.import_module(args.run).main(args, argv)
    print(line, flush=True)
    return args.run(args, argv)


if __name__ == "__main__":
    sys.exit(main())
