"""What a small experiment costs end to end, against the floor every PyTorch training process
pays, measured side by side in one run (issue 15's targets).

    python scripts/small_runs.py [--repeats 3]

Floor: `python -c "import torch; torch.optim.SGD(torch.nn.Linear(2,2).parameters(), lr=0.1)"`
(importing torch, and torch._dynamo, which the first torch.optim constructor pulls in).
Each case runs as a fresh process in a scratch folder, interleaved with the others; the
table gives medians and the ratio to the floor's median, with the 1-minute load average.

Targets: default run with trainer.epochs=1 <= 1.5x; a 20-job 1-epoch sweep <= 3x;
check / inspect / gradcheck / lr-find <= 1.5x each. Exit 1 when one is missed. A command
returns once its results are recorded, while its figures are still being drawn in the
background (trainlab.engine.figures): the train cases are also timed until their last figure
exists, and the next case starts only then (a drawer still running would slow it down).

    --only TEXT   only the cases whose name contains TEXT (and the floor); may be repeated
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TRAINLAB = [sys.executable, "-m", "trainlab"]
FLOOR = "floor: import torch + torch.optim.SGD"
CASES = {  # name -> (argv with {dir} for a fresh output folder, target ratio)
    FLOOR: ([sys.executable, "-c", "import torch; torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)"], None),
    "trainlab train trainer.epochs=1": ([*TRAINLAB, "train", "trainer.epochs=1", "hydra.run.dir={dir}"], 1.5),
    "trainlab train -m 'seed=range(20)' trainer.epochs=1": (
        [*TRAINLAB, "train", "-m", "seed=range(20)", "trainer.epochs=1", "hydra.sweep.dir={dir}"], 3.0),
    "trainlab check": ([*TRAINLAB, "check", "--out", "{dir}"], 1.5),
    "trainlab inspect": ([*TRAINLAB, "inspect", "--out", "{dir}"], 1.5),
    "trainlab gradcheck": ([*TRAINLAB, "gradcheck", "--out", "{dir}"], 1.5),
    "trainlab lr-find": ([*TRAINLAB, "lr-find", "--out", "{dir}"], 1.5),
}


def main(argv: list[str]) -> int:
    repeats = int(argv[argv.index("--repeats") + 1]) if "--repeats" in argv else 3
    only = [argv[i + 1] for i, a in enumerate(argv) if a == "--only"]
    cases = {name: case for name, case in CASES.items() if name == FLOOR or not only or any(o in name for o in only)}
    scratch = Path(tempfile.mkdtemp(prefix="trainlab-small-runs-"))
    load_start = os.getloadavg()[0]
    times: dict[str, list[float]] = {name: [] for name in cases}
    drawn: dict[str, list[float]] = {name: [] for name in cases}  # until the last figure exists
    failed = []
    try:
        for rep in range(repeats):
            for i, (name, (argv_, _)) in enumerate(cases.items()):
                out = scratch / f"{rep}-{i}"
                cmd = [a.replace("{dir}", str(out)) for a in argv_]
                start = time.perf_counter()
                res = subprocess.run(cmd, cwd=scratch, capture_output=True, text=True)
                times[name].append(time.perf_counter() - start)
                if argv_[:len(TRAINLAB) + 1] == [*TRAINLAB, "train"] and res.returncode == 0:
                    while not figures_drawn(out) and time.perf_counter() - start < 300:
                        time.sleep(0.05)
                    drawn[name].append(time.perf_counter() - start)
                if res.returncode not in (0, 1):  # check/gradcheck exit 1 when a check fails: still measured
                    failed.append(f"{name}: exit {res.returncode}: {res.stderr.strip()[-300:]}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    floor = statistics.median(times[FLOOR])
    print(f"load average (1 min) at the start: {load_start:.2f}, at the end: {os.getloadavg()[0]:.2f}; "
          f"{repeats} interleaved repeats, medians\n")
    print("| case | wall (s) | x floor | target | met | until the figures exist (s) |\n"
          "| :-- | --: | --: | --: | :-- | --: |")
    missed = []
    for name, (_, target) in cases.items():
        wall = statistics.median(times[name])
        ratio = wall / floor
        met = "" if target is None else ("yes" if ratio <= target else "**no**")
        if target is not None and ratio > target:
            missed.append(name)
        until = f"{statistics.median(drawn[name]):.2f}" if drawn[name] else ""
        print(f"| {name} | {wall:.2f} | {ratio:.2f} | {'' if target is None else f'<= {target}'} | {met} | {until} |")
    for line in failed:
        print(f"failed: {line}")
    return 1 if missed or failed else 0


def figures_drawn(out: Path) -> bool:
    """A run folder's curves.png and diagnostics.png, or every job's and a sweep's own curves.png."""
    if not out.is_dir():
        return False
    runs = [out] if (out / "metrics.csv").is_file() else [d for d in out.iterdir() if (d / "metrics.csv").is_file()]
    sweep = [] if runs == [out] else [out / "curves.png"]
    return bool(runs) and all(p.is_file() for p in sweep + [r / n for r in runs for n in ("curves.png", "diagnostics.png")])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
