"""Wall time of a seed sweep under hydra/launcher=vectorized against the same sweep under the basic launcher.

    python scripts/vectorized_bench.py [--seeds 8] [--repeats 1] [-- extra overrides, e.g. arch=cnn trainer.epochs=5]

Both are the real command line, `trainlab train -m 'seed=range(N)' [hydra/launcher=vectorized] ...`, run
as subprocesses one after the other in this one script run (vectorized first, then basic, repeated
`--repeats` times, alternating, so drift in the machine's load hits both alike). Each wall time
covers everything the user waits for: start-up, the precheck, every job's setup, training,
checkpoints and the sweep table. The figures are drawn by a background process after the command
returns (trainlab.engine.figures): the script waits for that process to exit before it starts the
next sweep, untimed, so one sweep's drawing does not slow the next one down; how long after the
command the figures were done is printed beside each time. `uptime` is printed before and after: the machine may
be shared, and the load average says how much the figures can be trusted. The sweep folders go to a
temporary directory; the mean test accuracy of each sweep is printed beside its time (both are a
sample of the same seeds' runs, so they should agree within their spread).
"""
import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "load: " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def cpu_seconds() -> float:
    """User + system CPU time of this script's finished children (the sweeps and what they started)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wait_for_drawer(output: str, timeout: float = 300.0) -> float | None:
    """Seconds until the background figure drawer the command reported ("drawn in the background
    (pid N)") has exited; None when it reported none. It is not this script's child (the sweep
    started it), so it is polled."""
    found = re.search(r"drawn in the background \(pid (\d+)\)", output)
    if not found:
        return None
    pid, started = int(found.group(1)), time.perf_counter()
    while time.perf_counter() - started < timeout:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    return time.perf_counter() - started


def sweep(root: Path, name: str, seeds: int, vectorized: bool, extra: list[str]) -> tuple[float, float, list[float]]:
    """(wall seconds, CPU seconds, test accuracies) of one sweep run from the command line. The CPU
    time is the steadier figure on a shared machine: other load stretches wall time, not CPU time."""
    args = ["-m", f"seed=range({seeds})", "trainer.progress=off", f"hydra.sweep.dir={root / name}", *extra]
    if vectorized:
        args.append("hydra/launcher=vectorized")
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    started, cpu = time.perf_counter(), cpu_seconds()
    done = subprocess.run([sys.executable, "-m", "trainlab", "train", *args], env=env, cwd=root,
                          capture_output=True, text=True)
    wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    if done.returncode != 0:
        sys.exit(f"{name} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    drawn = wait_for_drawer(done.stdout + done.stderr)
    if drawn is not None:
        print(f"  ({name}: its figures were done {drawn:.1f} s after the command returned; not timed)")
    accs = [json.loads(p.read_text())["test"]["acc"] for p in sorted((root / name).glob("*/summary.json"))]
    return wall, cpu, accs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8, help="replicates in the sweep (default 8)")
    parser.add_argument("--repeats", type=int, default=1, help="pairs of sweeps timed (default 1)")
    parser.add_argument("extra", nargs="*", help="overrides for both sweeps (after --)")
    args = parser.parse_args()
    print(f"before: {uptime()}")
    times: dict[str, list[float]] = {"vectorized": [], "basic": []}
    cpus: dict[str, list[float]] = {"vectorized": [], "basic": []}
    accs: dict[str, list[float]] = {"vectorized": [], "basic": []}
    with tempfile.TemporaryDirectory(prefix="vectorized_bench_") as tmp:
        for rep in range(args.repeats):
            for launcher in ("vectorized", "basic"):
                wall, cpu, acc = sweep(Path(tmp), f"{launcher}{rep}", args.seeds, launcher == "vectorized", args.extra)
                times[launcher].append(wall)
                cpus[launcher].append(cpu)
                accs[launcher] += acc
                print(f"  {launcher:<10} repeat {rep}: {wall:6.1f} s wall, {cpu:6.1f} s CPU  ({uptime().split('load average:')[-1].strip()})")
    print(f"after:  {uptime()}")
    extra = " ".join(args.extra) or "(default config)"
    print(f"\n| sweep: seed=range({args.seeds}) {extra} | wall time (s) | CPU time (s) | test acc (%) mean ± std |")
    print("| :-- | --: | --: | --: |")
    for launcher in ("basic", "vectorized"):
        t, a = times[launcher], [100 * x for x in accs[launcher]]
        spread = statistics.stdev(a) if len(a) > 1 else 0.0
        print(f"| hydra/launcher={launcher} | {statistics.median(t):.1f} | {statistics.median(cpus[launcher]):.1f} | {statistics.mean(a):.2f} ± {spread:.2f} |")
    ratio = statistics.median(times["vectorized"]) / statistics.median(times["basic"])
    cpu_ratio = statistics.median(cpus["vectorized"]) / statistics.median(cpus["basic"])
    print(f"\nvectorized / basic: wall time {ratio:.2f}x, CPU time {cpu_ratio:.2f}x "
          "(target: wall <= 0.5x on the 2-core CPU, default config)")


if __name__ == "__main__":
    main()
