"""Run the experiment presets as documented and collect their tables: the figures the lesson
pages (docs/lessons/<name>.md) quote. Each sweep folder also keeps its curves.png.

    TRAINLAB_DATA=/path/with/MNIST python scripts/run_presets.py [NAME ...] [--out DIR]

Each preset runs as `trainlab train -m experiment=NAME` in a fresh process (one after another:
on 2 cores, two sweeps at once slow each other down far more than 2x). For each one the script
records the wall time and the machine's load average before and after, so a slow figure on a
shared machine can be told from a slow preset, and copies the sweep's table.md. The
ema_ensembles preset is followed by `trainlab ensemble` on its sweep, as its header says.
The report goes to DIR/presets.md (default: outputs/presets).
"""
import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAINLAB = [sys.executable, "-m", "trainlab"]


def presets() -> list[str]:
    return sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "n/a"


def child_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes: unlike the wall time, barely
    moved by other work on a shared machine."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_one(name: str, out: Path, extra: list[str]) -> str:
    sweep = out / name
    if sweep.exists():
        raise SystemExit(f"error: {sweep} exists: pick another --out or remove it")
    before, start, cpu0 = load(), time.perf_counter(), child_cpu()
    res = subprocess.run([*TRAINLAB, "train", "-m", f"experiment={name}", f"hydra.sweep.dir={sweep}", *extra],
                         cwd=out, capture_output=True, text=True)
    seconds, after, cpu = time.perf_counter() - start, load(), child_cpu() - cpu0
    (out / f"{name}.log").write_text(res.stdout + res.stderr)
    command = " ".join(["trainlab train -m", f"experiment={name}", *extra])
    lines = [f"## {name}", "", f"`{command}`: exit {res.returncode}, "
             f"{seconds:.0f} s wall, {cpu:.0f} CPU s, load average (1/5/15 min) {before} before, {after} after", ""]
    table = sweep / "table.md"
    lines += [table.read_text().rstrip() if table.exists() else "(no table.md: see the log)", ""]
    if name == "ema_ensembles" and res.returncode == 0:  # one ensemble per row: the seeds of each rate
        ens = subprocess.run([*TRAINLAB, "ensemble", str(sweep), "--per-row"], cwd=out, capture_output=True, text=True)
        lines += [f"`trainlab ensemble {name} --per-row`:", "", "```", (ens.stdout + ens.stderr).strip()[-1500:],
                  "```", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="presets to run (default: all of conf/experiment/*.yaml)")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "presets")
    parser.add_argument("--threads", type=int, help="trainer.threads for every job (default: the preset's, auto); "
                        "1 on a machine shared with other CPU-bound work, where torch's threads would wait on each other")
    args = parser.parse_args()
    unknown = set(args.names) - set(presets())
    if unknown:
        raise SystemExit(f"error: preset {sorted(unknown)[0]!r} is not valid: choose from {', '.join(presets())}")
    if not os.environ.get("TRAINLAB_DATA"):
        print("note: TRAINLAB_DATA is not set: the presets read (or download) datasets under ./data", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    report = args.out / "presets.md"
    for name in args.names or presets():
        extra = [f"trainer.threads={args.threads}"] if args.threads else []
        section = run_one(name, args.out.resolve(), extra)
        with report.open("a") as f:
            f.write(section + "\n")
        print(section, flush=True)
    print(f"report: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
