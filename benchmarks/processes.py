"""Whole-process timings through hyperfine: each case is one command line run as a fresh process.

By default the cases are interleaved: one round runs every case once (one `hyperfine --runs 1` call
per case, in order), and `--runs` rounds follow each other, so drift in the machine's load hits every
case alike and a ratio can be taken within a round (the median of the per-round ratios is reported).
`--blocks` instead hands all cases to one hyperfine call, which runs each case's `--runs` back to
back (its own per-command blocks): fewer calls, but a load change between blocks lands in the ratio.

Wall time is hyperfine's; CPU time is its user + system time, which counts the command and every
child it waited for (a figure drawer the command waits for is in it; a detached one is not).
Every command runs under `env OMP_WAIT_POLICY=PASSIVE ...` with its own variables, without a shell
(`hyperfine -N`), in a scratch folder; a case with an output folder has it removed by `--prepare`
before each run, so every run starts clean. A command that left its figure drawer running in the
background (TRAINLAB_FIGURES unset) is waited for, untimed, before the next case starts (interleaved
rounds only: inside hyperfine's blocks the next run starts at once).
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean

from benchmarks.common import OMP_ENV, fmt, load1, median, met, spread

HYPERFINE = shutil.which("hyperfine")


@dataclass
class Case:
    name: str
    argv: list[str]                       # may hold {dir}: a fresh output folder per run
    env: dict[str, str] = field(default_factory=dict)
    may_fail: bool = False                # a non-zero exit is part of what is measured (bad input)


@dataclass
class Timings:
    wall: list[float] = field(default_factory=list)   # seconds, one per run
    cpu: list[float] = field(default_factory=list)    # user + system seconds, one per run (blocks: the mean)
    test_acc: list[float] = field(default_factory=list)  # every run's summary.json test acc (a sanity check)

    @property
    def wall_median(self) -> float:
        return median(self.wall)

    @property
    def cpu_median(self) -> float:
        return median(self.cpu)


# Variables of the caller's shell that would change what a case measures (TRAINLAB_FIGURES=inline, a
# SLURM job making every command wait for its figures): removed unless the case sets them itself.
UNSET = ("TRAINLAB_FIGURES", "SLURM_JOB_ID", "HYDRA_FULL_ERROR", "TRAINLAB_VERBOSE")


def command(case: Case, folder: Path) -> str:
    argv = [a.replace("{dir}", str(folder)) for a in case.argv]
    unset = [f"--unset={k}" for k in UNSET if k not in case.env]
    env = [f"{k}={v}" for k, v in {**OMP_ENV, **case.env}.items()]
    return shlex.join(["env", *unset, *env, *argv])


def _hyperfine(cases: list[Case], folders: list[Path], runs: int, cwd: Path) -> list[dict]:
    if HYPERFINE is None:
        sys.exit("hyperfine is not installed (https://github.com/sharkdp/hyperfine): apt-get install hyperfine")
    out = cwd / "hyperfine.json"
    cmd = [HYPERFINE, "-N", "--style", "none", "--runs", str(runs), "--export-json", str(out),
           "--output", str(cwd / "output.txt")]  # the last run's stdout: names a background drawer
    if any(c.may_fail for c in cases):
        cmd.append("--ignore-failure")
    if any("{dir}" in " ".join(c.argv) for c in cases):  # one --prepare per command, in order
        for folder in folders:
            cmd += ["--prepare", shlex.join(["rm", "-rf", str(folder)])]
    cmd += [command(c, f) for c, f in zip(cases, folders)]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, **OMP_ENV})
    if proc.returncode != 0:
        sys.exit(f"hyperfine failed (exit {proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return json.loads(out.read_text())["results"]


def wait_for_drawer(output: Path, timeout: float = 300.0) -> None:
    """Untimed: let the figure drawer a command left running in the background ("drawn in the
    background (pid N)") finish, so it does not slow the next case down. It is not our child: polled."""
    found = re.search(r"drawn in the background \(pid (\d+)\)", output.read_text(errors="replace")) \
        if output.is_file() else None
    if not found:
        return
    pid, started = int(found.group(1)), time.perf_counter()
    while time.perf_counter() - started < timeout:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def test_accuracies(folder: Path) -> list[float]:
    """Test accuracies in the run folders a command left (its last run's: --prepare empties it first)."""
    accs = []
    for path in sorted(folder.rglob("summary.json")) if folder.is_dir() else []:
        try:
            acc = (json.loads(path.read_text()).get("test") or {}).get("acc")
        except (OSError, ValueError):
            continue
        if isinstance(acc, (int, float)):
            accs.append(float(acc))
    return accs


def measure(cases: list[Case], runs: int, warmup: int = 0,
            blocks: bool = False) -> tuple[dict[str, Timings], tuple[float, float]]:
    """Timings per case name, and the 1-minute load average before and after."""
    scratch = Path(tempfile.mkdtemp(prefix="trainlab-bench-"))
    folders = [scratch / f"out{i}" for i in range(len(cases))]
    timings = {c.name: Timings() for c in cases}
    for c, folder in zip(cases, folders):
        print(f"  {c.name}: {command(c, folder)}", flush=True)
    load_before = load1()
    try:
        if blocks:
            for c, f, res in zip(cases, folders, _hyperfine(cases, folders, runs, scratch)):  # no warm-up
                timings[c.name].test_acc += test_accuracies(f)
                timings[c.name].wall += res["times"]
                timings[c.name].cpu += [res["user"] + res["system"]] * len(res["times"])
        else:
            for round_ in range(warmup + runs):
                for c, folder in zip(cases, folders):
                    res = _hyperfine([c], [folder], 1, scratch)[0]
                    wait_for_drawer(scratch / "output.txt")
                    if round_ >= warmup:
                        timings[c.name].test_acc += test_accuracies(folder)
                        timings[c.name].wall.append(res["times"][0])
                        timings[c.name].cpu.append(res["user"] + res["system"])
                    print(f"  round {round_ + 1}{' (warm-up)' if round_ < warmup else ''}: {c.name}: "
                          f"{res['times'][0]:.2f} s wall, {res['user'] + res['system']:.2f} s CPU", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return timings, (load_before, load1())


def paired_ratio(t: dict[str, Timings], num: str, den: str, cpu: bool = False) -> float:
    """Median over rounds of num/den within a round (interleaved); with blocks the pairs are by run
    index, from different blocks."""
    a, b = (t[num].cpu, t[den].cpu) if cpu else (t[num].wall, t[den].wall)
    return median([x / y for x, y in zip(a, b) if y > 0])


def method_note(runs: int, blocks: bool, warmup: int) -> str:
    how = (f"hyperfine's per-command blocks ({runs} runs of one case, then the next; ratios pair the i-th runs "
           "of two blocks, so a load change between blocks is in them)" if blocks else
           f"{runs} interleaved round{'s' if runs > 1 else ''} (one `hyperfine -N --runs 1` call per case per round"
           + (f", after {warmup} untimed round{'s' if warmup > 1 else ''}" if warmup else "") + ")")
    return (f"Timed by hyperfine, {how}; medians, ± the standard deviation over runs; ratios are medians of "
            "per-run ratios. CPU = user + system time of the command and the children it waited for. "
            "Every command ran under `OMP_WAIT_POLICY=PASSIVE`"
            + "".join(f", {k}={os.environ[k]}" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ)
            + ".")


def case_rows(cases: list[Case], t: dict[str, Timings], ref: str, targets: dict[str, float] | None = None,
              ) -> tuple[list[str], list[list[str]]]:
    """Rows of wall and CPU medians and their ratios to `ref` (the floor, or a baseline case)."""
    targets = targets or {}
    header = ["case", "wall (s)", "CPU (s)", f"wall ÷ {ref.split(':')[0]}", "CPU ÷ same", "target (wall)", "met"]
    rows = []
    for c in cases:
        w, r = t[c.name], paired_ratio(t, c.name, ref)
        limit = targets.get(c.name)
        rows.append([c.name, f"{w.wall_median:.2f} ± {spread(w.wall):.2f}", f"{w.cpu_median:.2f}",
                     fmt(r), fmt(paired_ratio(t, c.name, ref, cpu=True)),
                     f"≤ {limit}" if limit is not None else "", met(r, limit)])
    return header, rows


def add_process_options(p, runs: int) -> None:
    p.add_argument("--runs", type=int, default=runs, help=f"timed runs (rounds) of every case (default {runs})")
    p.add_argument("--warmup", type=int, default=0, help="untimed rounds first (default 0)")
    p.add_argument("--blocks", action="store_true",
                   help="one hyperfine call with all cases (its per-command blocks) instead of interleaved rounds")
