"""A run folder's figures, drawn from its metrics.csv: curves.png and diagnostics.png.

Drawn from the file, not from the training process's memory, so the same figure comes out
in line at the end of a run (in-process callers, runs with a logger), later in the command's
background drawer (FigureWorker: `trainlab train` returns without waiting for it), or on
demand with `trainlab plot`. No torch here, and matplotlib only once a figure is drawn.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from trainlab.diagnose.live_plot import plot_diagnostics
from trainlab.engine.metrics import STEP_LOSSES, read_floats, read_step_losses

log = logging.getLogger("trainlab")


def plot_curves(rows: list[dict], path: Path, title: str = "", step_losses: list[float] | None = None,
                summary: dict | None = None) -> None:
    """curves.png: loss (every step's, raw and smoothed, and the evaluations'), accuracy (train in
    eval mode, running train, val) with the best epoch and the test result marked, and the
    learning rate (a note instead of a flat line when it never changed)."""
    import math

    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] for r in rows]
    trained = [r for r in rows if math.isfinite(r.get("train_loss", math.nan))]  # not the step-0 row
    fig = Figure(figsize=(13, 3.6))
    ax_loss, ax_acc, ax_lr = fig.subplots(1, 3)
    per_epoch = next((r["step"] / r["epoch"] for r in rows if r.get("epoch", 0) > 0 and r.get("step", 0) > 0), None)
    if step_losses and per_epoch:
        x = [(i + 1) / per_epoch for i in range(len(step_losses))]
        ax_loss.plot(x, step_losses, color="tab:blue", alpha=0.35, linewidth=0.6, label="train, every step")
        window = max(1, min(len(step_losses) // 20, int(per_epoch)))  # at most an epoch's steps
        if window > 1:
            ax_loss.plot(x[window - 1:], _moving_mean(step_losses, window), color="tab:blue", linewidth=1.4,
                         label=f"train, mean of {window} steps")
    else:
        ax_loss.plot([r["epoch"] for r in trained], [r["train_loss"] for r in trained], label="train (running)")
    ax_loss.plot(epochs, [r["val_loss"] for r in rows], "o-", color="tab:orange", markersize=3, label="val")
    if any(math.isfinite(r.get("train_eval_loss", math.nan)) for r in rows):
        ax_loss.plot(epochs, [r.get("train_eval_loss", math.nan) for r in rows], "--", color="tab:blue",
                     label="train (eval mode)")
    if any(r.get("train_penalty", 0) for r in trained):
        ax_loss.plot([r["epoch"] for r in trained], [r["train_loss"] + r["train_penalty"] for r in trained], ":",
                     label="train (with penalty)")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.plot([r["epoch"] for r in trained], [100 * r["train_acc"] for r in trained], color="tab:blue", alpha=0.4,
                linewidth=1, label="train (running, train mode)")
    if any(math.isfinite(r.get("train_eval_acc", math.nan)) for r in rows):
        ax_acc.plot(epochs, [100 * r.get("train_eval_acc", math.nan) for r in rows], color="tab:blue",
                    label="train (eval mode)")
    ax_acc.plot(epochs, [100 * r["val_acc"] for r in rows], "o-", color="tab:orange", markersize=3, label="val")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    _mark_best_and_test(ax_loss, ax_acc, summary or {})
    lrs = [r["lr"] for r in rows if math.isfinite(r.get("lr", math.nan))]
    if lrs and min(lrs) == max(lrs):  # a flat line says less than a sentence
        ax_lr.axis("off")
        ax_lr.text(0.5, 0.5, f"learning rate constant\nat {lrs[0]:.3g}\n(no schedule)", ha="center", va="center",
                   fontsize=12, transform=ax_lr.transAxes)
    else:
        ax_lr.plot(epochs, [r["lr"] for r in rows], "o-", color="tab:green", markersize=3)
        ax_lr.set(xlabel="epoch", ylabel="learning rate", title="learning rate (the rate each epoch trained at)")
        if lrs and min(lrs) > 0 and max(lrs) / min(lrs) > 20:
            ax_lr.set_yscale("log")
        ax_lr.grid(alpha=0.3)
        ax_lr.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in (ax_loss, ax_acc):
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        fig.suptitle(title)
    # Fixed margins, not tight_layout: measuring every tick label to place the axes took a third of
    # the figure's drawing time, and a job's figures cost more CPU than a small job's training.
    fig.subplots_adjust(left=0.05, right=0.985, bottom=0.13, top=0.84 if title else 0.9, wspace=0.22)
    fig.savefig(path, dpi=100)


def _moving_mean(values: list[float], window: int) -> list[float]:
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        if i >= window - 1:
            out.append(total / window)
    return out


def _mark_best_and_test(ax_loss, ax_acc, summary: dict) -> None:
    """The best checkpoint's epoch (a dotted line) and its test accuracy (a star at that epoch)."""
    best, test = summary.get("best") or {}, summary.get("test") or {}
    if not isinstance(best.get("epoch"), (int, float)):
        return
    for ax in (ax_loss, ax_acc):
        ax.axvline(best["epoch"], color="gray", linestyle=":", linewidth=1,
                   label=f"best (epoch {best['epoch']:g})" if ax is ax_acc else None)
    if isinstance(test.get("acc"), (int, float)):
        ax_acc.plot([best["epoch"]], [100 * test["acc"]], "*", color="tab:red", markersize=11,
                    label=f"test {100 * test['acc']:.1f}% (best checkpoint)")


def _read_json(path: Path) -> dict:
    import json

    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def draw_run_figures(run_dir: Path) -> list[Path]:
    """(Re)draw a run folder's figures from its files (metrics.csv, step_losses.csv, summary.json,
    diagnostics_layers.json); the paths written."""
    run_dir = Path(run_dir)
    rows = read_floats(run_dir / "metrics.csv")
    if not rows:
        return []
    written = [run_dir / "curves.png"]
    plot_curves(rows, written[0], title=run_dir.name, step_losses=read_step_losses(run_dir / STEP_LOSSES),
                summary=_read_json(run_dir / "summary.json"))
    diagnostics = plot_diagnostics(rows, run_dir / "diagnostics.png", _read_json(run_dir / "diagnostics_layers.json"))
    return written + ([diagnostics] if diagnostics else [])


class FigureWorker:
    """Draws run folders' figures in one background process, in submission order, off the
    command's critical path: a job's figures take longer to draw (about 0.7 s, and 0.6 s to
    import matplotlib) than a small job takes to train.

    A job's result (summary.json) is written before its folder is handed over, so nothing is
    lost when a figure is still pending; `trainlab plot` redraws. The drawer is a separate
    Python process (`python -m trainlab.engine.figures`, not a fork: the parent holds torch's
    thread pools) at a lower CPU priority, reading folders from a pipe. By default the command
    does not wait for it: the drawer finishes the queued figures after the command has returned
    (its own session, so a Ctrl-C in the terminal does not cut it short). It waits when
    TRAINLAB_FIGURES=wait, and inside a SLURM job, whose processes end with the job.
    TRAINLAB_FIGURES=inline draws in the calling process instead, at once (no second Python
    process and matplotlib import per command: what a test suite that runs hundreds of commands
    in one process, or a notebook, wants).
    """

    def __init__(self, wait: bool | None = None):
        self.wait = figures_wait() if wait is None else wait
        self.inline = wait is None and os.environ.get("TRAINLAB_FIGURES") == "inline"
        self._proc = None

    def submit(self, run_dir: Path) -> None:
        self._send("run", run_dir)

    def submit_sweep(self, sweep_dir: Path) -> None:
        """The sweep's own curves.png (with its table), after the jobs' figures."""
        self._send("sweep", sweep_dir)

    def start(self, kind: str) -> None:
        """Start the drawer now, before any folder is ready, so that it imports what drawing `kind`
        ("run" or "sweep") needs (matplotlib alone is 0.6 s) while the command trains on the other core."""
        if not self.inline and self._proc is None:
            self._spawn(kind)

    def _send(self, kind: str, folder: Path) -> None:
        if self.inline:
            _serve([f"{kind}\t{Path(folder).resolve()}\n"])
            return
        if self._proc is None:
            self._spawn(kind)
        self._proc.stdin.write(f"{kind}\t{Path(folder).resolve()}\n")
        self._proc.stdin.flush()

    def _spawn(self, kind: str) -> None:
        import subprocess

        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p))
        quiet = None if self.wait else subprocess.DEVNULL  # a detached drawer must not hold the caller's pipes
        self._proc = subprocess.Popen([sys.executable, "-m", "trainlab.engine.figures", kind], stdin=subprocess.PIPE,
                                      stdout=quiet, stderr=quiet, env=env, text=True, start_new_session=True)

    def close(self) -> None:
        """No more folders. Waits for the drawer only in wait mode; a failed figure is a line in the
        run's train.log (and a warning on stderr when waiting), never a failed run."""
        if self._proc is None:
            return
        self._proc.stdin.close()
        if self.wait:
            self._proc.wait()
        else:
            log.info(f"figures: drawn in the background (pid {self._proc.pid}); `trainlab plot` redraws them")
        self._proc = None


def figures_wait() -> bool:
    return os.environ.get("TRAINLAB_FIGURES") == "wait" or bool(os.environ.get("SLURM_JOB_ID"))


def _serve(lines) -> None:
    """The drawer's requests (or an inline one): one `kind<TAB>folder` line each, until the pipe closes."""
    for line in lines:
        kind, _, folder = line.rstrip("\n").partition("\t")
        try:
            if kind == "sweep":
                from trainlab.sweep.cli import write_sweep_report

                write_sweep_report(Path(folder), tables=False)
            else:
                draw_run_figures(Path(folder))
        except Exception as err:
            message = (f"could not draw the figures of {folder} ({type(err).__name__}: {err}); "
                       f"`trainlab plot {folder}` tries again")
            print(f"warning: {message}", file=sys.stderr)
            try:
                with open(Path(folder) / "train.log", "a") as log_file:
                    log_file.write(f"[figures] {message}\n")
            except OSError:
                pass


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


def _warm(kind: str) -> None:
    """What drawing `kind` imports, done before the first request arrives (the drawer is started early)."""
    import matplotlib.figure  # noqa: F401

    if kind == "sweep":
        import scipy.special  # noqa: F401  (the table's intervals: table.png)

        import trainlab.sweep.cli  # noqa: F401
        import trainlab.sweep.figure  # noqa: F401
        import trainlab.sweep.table_figure  # noqa: F401


if __name__ == "__main__":
    try:
        os.nice(10)  # a sweep's next job trains at full speed; figures take what is left
    except (AttributeError, OSError):
        pass
    _warm(sys.argv[1] if len(sys.argv) > 1 else "run")
    _serve(sys.stdin)
