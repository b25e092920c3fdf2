"""How fast the CLI answers when nothing trains: --help, --version, `list` and bad input,
against the floor of `python -c "import torch"`, measured side by side in one run.

    python scripts/cli_latency.py [--repeats 7]

Each command runs as a fresh process, interleaved with the others, `repeats` times; the table
gives the median wall time, the median peak RSS (os.wait4) and the ratio to `import torch`.
Target (issue 11): every row at most 0.5x the import-torch time. Exit 1 when a row misses it.
Give the machine's load with the figures: the script prints the 1-minute load average.
"""
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

TRAINLAB = [sys.executable, "-m", "trainlab"]
CASES = {
    "python -c 'import torch' (floor)": [sys.executable, "-c", "import torch"],
    "trainlab --version": [*TRAINLAB, "--version"],
    "trainlab --help": [*TRAINLAB, "--help"],
    "trainlab train --help": [*TRAINLAB, "train", "--help"],
    "trainlab resume --help": [*TRAINLAB, "resume", "--help"],
    "trainlab list optimizer": [*TRAINLAB, "list", "optimizer"],
    "trainlab train optimizer.lr=-1 (bad value)": [*TRAINLAB, "train", "optimizer.lr=-1"],
    "trainlab train optimizer=adamm (bad option)": [*TRAINLAB, "train", "optimizer=adamm"],
    "trainlab train init=xavier +init.std=0.5 (unknown key)": [*TRAINLAB, "train", "init=xavier", "+init.std=0.5"],
    "trainlab train -m norm=none,instancenorm (bad sweep job)": [*TRAINLAB, "train", "-m", "norm=none,instancenorm"],
}


def measure(cmd: list[str], cwd: Path) -> tuple[float, float]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def main(argv: list[str]) -> int:
    repeats = int(argv[argv.index("--repeats") + 1]) if "--repeats" in argv else 7
    cwd = Path(os.environ.get("TMPDIR", "/tmp")) / "trainlab-cli-latency"
    cwd.mkdir(parents=True, exist_ok=True)
    times = {name: [] for name in CASES}
    rss = {name: [] for name in CASES}
    for _ in range(repeats):
        for name, cmd in CASES.items():
            wall, peak = measure(cmd, cwd)
            times[name].append(wall)
            rss[name].append(peak)
    floor = statistics.median(times[next(iter(CASES))])
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f}; {repeats} interleaved repeats, medians\n")
    print(f"| command | wall (s) | peak RSS (MB) | x import torch |\n| :-- | --: | --: | --: |")
    missed = []
    for name in CASES:
        wall = statistics.median(times[name])
        ratio = wall / floor
        print(f"| {name} | {wall:.2f} | {statistics.median(rss[name]):.0f} | {ratio:.2f} |")
        if name != next(iter(CASES)) and ratio > 0.5:
            missed.append(name)
    for name in missed:
        print(f"missed the 0.5x target: {name}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
