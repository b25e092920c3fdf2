"""Sweep throughput for scripts/bench.py: N tiny jobs (digits MLP, 1 epoch) run three ways.

    one process    trainlab train -m seed=range(N) trainer.epochs=1 trainer.progress=off
    N processes    trainlab train seed=i trainer.epochs=1 trainer.progress=off, one after another
    joblib         the one-process command plus hydra/launcher=joblib (when the plugin is installed)

Every command runs in a fresh temporary folder (its outputs/ land there). The
per-job split comes from the runs' own summary.json `wall_time_s` (assemble,
train, evaluate, test), so the rest of a job's share of the wall time is fixed
overhead: Hydra's job set-up, the run folder, checkpoints, plots, the table.
"""
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMON = ["trainer.epochs=1", "trainer.progress=off"]


def _env() -> dict:
    # jobs run as users run them: without bench.py's malloc thresholds (MALLOC_*_)
    env = {k: v for k, v in os.environ.items()
           if k not in ("HYDRA_FULL_ERROR", "TRAINLAB_VERBOSE") and not (k.startswith("MALLOC_") and k.endswith("_"))}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _timed(cmd: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-2000:]}")
    return elapsed


def _summaries(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(root.rglob("summary.json"))]


def _mode(name: str, command: str, wall: float, jobs: int, summaries: list[dict]) -> dict:
    train = [s["wall_time_s"] for s in summaries if isinstance(s.get("wall_time_s"), (int, float))]
    done = sum(s.get("status") == "completed" for s in summaries)
    return {"name": name, "command": command, "wall_s": wall, "jobs": jobs, "completed": done,
            "runs_per_hour": jobs / wall * 3600, "s_per_job": wall / jobs,
            "train_s_per_job": statistics.mean(train) if train else None}


def measure_sweep(jobs: int = 20) -> dict:
    trainlab = [sys.executable, "-m", "trainlab", "train"]
    modes = []
    with tempfile.TemporaryDirectory(prefix="trainlab-sweep-bench-") as tmp:
        tmp = Path(tmp)
        print(f"[sweep] {jobs} jobs: start-up baseline", flush=True)
        startup = statistics.median(_timed([*trainlab, "--cfg", "job", *COMMON], tmp) for _ in range(3))

        print(f"[sweep] {jobs} jobs in one process (-m)", flush=True)
        seq_dir = tmp / "one"
        seq_dir.mkdir()
        wall = _timed([*trainlab, "-m", f"seed=range({jobs})", *COMMON], seq_dir)
        modes.append(_mode("one process", f"trainlab train -m seed=range({jobs}) {' '.join(COMMON)}",
                           wall, jobs, _summaries(seq_dir)))

        print(f"[sweep] {jobs} separate processes", flush=True)
        sep_dir = tmp / "separate"
        sep_dir.mkdir()
        wall = sum(_timed([*trainlab, f"seed={i}", *COMMON], sep_dir) for i in range(jobs))
        modes.append(_mode(f"{jobs} processes", f"trainlab train seed=$i {' '.join(COMMON)}  (i = 0..{jobs - 1}, "
                           "one after another)", wall, jobs, _summaries(sep_dir)))

        if importlib.util.find_spec("hydra_plugins.hydra_joblib_launcher") is not None:
            print(f"[sweep] {jobs} jobs with hydra/launcher=joblib", flush=True)
            job_dir = tmp / "joblib"
            job_dir.mkdir()
            wall = _timed([*trainlab, "-m", f"seed=range({jobs})", *COMMON, "hydra/launcher=joblib"], job_dir)
            modes.append(_mode("joblib launcher", f"trainlab train -m seed=range({jobs}) {' '.join(COMMON)} "
                               "hydra/launcher=joblib", wall, jobs, _summaries(job_dir)))
            joblib_note = None
        else:
            joblib_note = "hydra/launcher=joblib: not measured (hydra-joblib-launcher is not installed)"
    return {"jobs": jobs, "startup_s": startup, "modes": modes, "joblib_note": joblib_note,
            "cores": os.cpu_count()}


def render_sweep(sweep: dict, device: str) -> list[str]:
    jobs = sweep["jobs"]
    where = "GPU" if device == "cuda" else "CPU"
    lines = [f"## Sweep throughput ({where}, {sweep.get('cores')} cores)", "",
             f"{jobs} tiny jobs: the default run (embedded 8x8 digits, MLP) for 1 epoch, progress off.", "",
             "| mode | command | wall (s) | runs / hour | s / job | of which the run's own `wall_time_s` | completed |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for m in sweep["modes"]:
        train = f"{m['train_s_per_job']:.2f}" if m.get("train_s_per_job") is not None else "—"
        lines.append(f"| {m['name']} | `{m['command']}` | {m['wall_s']:.1f} | {m['runs_per_hour']:,.0f} | "
                     f"{m['s_per_job']:.2f} | {train} | {m['completed']}/{m['jobs']} |")
    if sweep.get("joblib_note"):
        lines.append(f"| joblib launcher | {sweep['joblib_note']} | | | | | |")
    one = next(m for m in sweep["modes"] if m["name"] == "one process")
    sep = next(m for m in sweep["modes"] if m["name"].endswith("processes"))
    lines += ["", "Per-job fixed overhead:", "",
              f"- in one process: {one['s_per_job'] - (one['train_s_per_job'] or 0):.2f} s per job beyond the "
              f"run's own `wall_time_s` ({one['train_s_per_job'] or 0:.2f} s: assemble, train, evaluate, test) "
              "— Hydra job set-up, run folder, logs, checkpoints, summary, curves.png, and the sweep table once;",
              f"- a separate process adds {sep['s_per_job'] - one['s_per_job']:.2f} s per job on top "
              f"(interpreter start, imports, config composition and validation); `trainlab train --cfg job` "
              f"alone takes {sweep['startup_s']:.2f} s.", ""]
    return lines
