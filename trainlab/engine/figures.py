"""A run folder's figures, drawn from its metrics.csv: curves.png and diagnostics.png.

Drawn from the file, not from the training process's memory, so the same figure comes out
in line at the end of a run, later in a background process (a sweep's jobs: the next job
trains while this one's figures are drawn), or on demand with `trainlab plot`. No torch
here, and matplotlib only once a figure is drawn.
"""
from __future__ import annotations

import logging
from pathlib import Path

from trainlab.diagnose.live_plot import plot_diagnostics
from trainlab.engine.metrics import read_floats

log = logging.getLogger("trainlab")


def plot_curves(rows: list[dict], path: Path, title: str = "") -> None:
    """curves.png: loss and accuracy (train vs val) and the learning rate, per evaluation."""
    from matplotlib.figure import Figure

    epochs = [r["epoch"] for r in rows]
    fig = Figure(figsize=(13, 3.6))
    ax_loss, ax_acc, ax_lr = fig.subplots(1, 3)
    ax_loss.plot(epochs, [r["train_loss"] for r in rows], label="train (data loss)")
    ax_loss.plot(epochs, [r["val_loss"] for r in rows], label="val")
    if any(r.get("train_penalty", 0) for r in rows):
        ax_loss.plot(epochs, [r["train_loss"] + r["train_penalty"] for r in rows], "--", label="train (with penalty)")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.plot(epochs, [100 * r["train_acc"] for r in rows], label="train")
    ax_acc.plot(epochs, [100 * r["val_acc"] for r in rows], label="val")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    ax_lr.plot(epochs, [r["lr"] for r in rows], color="tab:green")
    ax_lr.set(xlabel="epoch", ylabel="learning rate", title="learning rate")
    if rows and min(r["lr"] for r in rows) > 0 and max(r["lr"] for r in rows) / min(r["lr"] for r in rows) > 20:
        ax_lr.set_yscale("log")
    for ax in (ax_loss, ax_acc):
        ax.legend()
        ax.grid(alpha=0.3)
    ax_lr.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def draw_run_figures(run_dir: Path) -> list[Path]:
    """(Re)draw a run folder's figures from its metrics.csv; the paths written."""
    run_dir = Path(run_dir)
    rows = read_floats(run_dir / "metrics.csv")
    if not rows:
        return []
    written = [run_dir / "curves.png"]
    plot_curves(rows, written[0], title=run_dir.name)
    diagnostics = plot_diagnostics(rows, run_dir / "diagnostics.png")
    return written + ([diagnostics] if diagnostics else [])


class FigureWorker:
    """Draws run folders' figures in one background process, in submission order.

    A sweep hands each finished job's folder here and goes on with the next job: on a
    machine with a core to spare, drawing (about 0.6 s a job) overlaps training instead of
    adding to it. The job's result (summary.json) is written before its folder is handed
    over, so a sweep killed with figures pending loses no result; `trainlab plot` redraws.
    A spawned process (not forked): the parent holds torch's thread pools, which do not
    survive a fork; the worker imports matplotlib and this module only.
    """

    def __init__(self):
        self._pool = None
        self._pending = []

    def submit(self, run_dir: Path) -> None:
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        self._pending.append((Path(run_dir), self._pool.submit(draw_run_figures, Path(run_dir))))

    def close(self) -> None:
        """Wait for every figure; a figure that failed is a warning, never a failed sweep."""
        for run_dir, future in self._pending:
            try:
                future.result()
            except Exception as err:
                log.warning(f"could not draw the figures of {run_dir} ({type(err).__name__}: {err}); "
                            f"`trainlab plot {run_dir}` tries again")
        self._pending = []
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


def plot_command(args: list[str]) -> int:
    """`trainlab plot RUN_OR_SWEEP ...`: redraw the figures of runs, or of every job of sweeps
    (and a sweep's own curves.png with its table)."""
    from trainlab.errors import ConfigError

    if any(a in ("-h", "--help") for a in args):
        print("usage: trainlab plot RUN_OR_SWEEP ...\n\nRedraw curves.png and diagnostics.png of a run folder from its "
              "metrics.csv, or of every job of a sweep folder (and the sweep's table and curves.png).")
        return 0
    if not args:
        raise ConfigError("RUN_OR_SWEEP", "", "a run or sweep folder to draw the figures of")
    for raw in args:
        folder = Path(raw)
        if (folder / "metrics.csv").is_file():
            for path in draw_run_figures(folder):
                print(path)
            continue
        from trainlab.sweep.runs import find_job_dirs

        jobs = find_job_dirs(folder) if folder.is_dir() else []
        if not jobs:
            raise ConfigError("RUN_OR_SWEEP", raw, "a run folder holding metrics.csv, or a sweep folder of such runs")
        for job in jobs:
            for path in draw_run_figures(job):
                print(path)
        from trainlab.sweep.cli import write_sweep_report

        print(write_sweep_report(folder).with_name("curves.png"))
    return 0
