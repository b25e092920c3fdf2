"""The two ways into the training core: one run, or a stacked group of seed replicates. Both set
their runs up, hand them to core.train with their stepper, and record a failure in the folders.

The caller (the command shell, trainlab.app) has validated each run's config (the spec), decided
whether it starts or continues in its folder (last.pt's content), and built its hooks and figure drawer.
"""
from __future__ import annotations

import signal
import time
from pathlib import Path

import torch
from omegaconf import DictConfig

from trainlab.config import RunSpec
from trainlab.engine import checkpoint as ckpt
from trainlab.engine import core, slurm_requeue
from trainlab.engine.finish import record_failure
from trainlab.engine.hooks import FigureDrawer, Hooks
from trainlab.engine.run import Run, log
from trainlab.engine.signals import preemption_signal
from trainlab.engine.steppers import SingleStepper, StackedStepper
from trainlab.engine.threads import resolve_threads, threads_for_step
from trainlab.errors import ConfigError


def run_training(cfg: DictConfig, spec: RunSpec, run_dir: Path, overrides: list[str] | None = None,
                 resume_state: dict | None = None, draw_figures: FigureDrawer | None = None, hooks: Hooks | None = None) -> dict:
    """Train one run in `run_dir` to its end and return its summary. On any exception a failed (or
    interrupted) summary.json is written and the traceback logged, then the exception propagates;
    bad input found while continuing a run leaves the folder untouched."""
    run_dir, started, run = Path(run_dir), time.time(), None
    existing = resume_state is not None
    try:
        run = Run(cfg, spec, run_dir, overrides, resume_state, draw_figures, hooks)
        resume_state = None  # the run holds the state now (and lets it go once restored)
        run.setup()
        core.train([run], SingleStepper(run))
    except ConfigError as err:
        if existing:  # refused before training: the folder keeps the run it holds, untouched
            raise
        return record_failure(run_dir, cfg, overrides, started, err, run)
    except BaseException as err:
        record_failure(run_dir, cfg, overrides, started, err, run)
    hand_over(run)
    return run.summary


def set_up_replicate(cfg: DictConfig, spec: RunSpec, run_dir: Path, overrides: list[str], resume_state: dict | None,
                     draw_figures: FigureDrawer | None, hooks: Hooks | None, log_file: Path) -> Run:
    """One replicate of a group, set up (its failure recorded in its folder, then raised)."""
    started, run = time.time(), None
    existing = resume_state is not None
    try:
        run = Run(cfg, spec, run_dir, overrides, resume_state, draw_figures, hooks, log_file=log_file)
        run.setup()
        return run
    except BaseException as err:
        if isinstance(err, ConfigError) and existing:
            raise
        record_failure(run_dir, cfg, overrides, started, err, run)


def train_group(runs: list[Run]) -> None:
    """Train set-up replicates that are all at the same step (a fresh group, or one resumed from one
    common step) as one stacked model. Their checkpoints are written by one background thread while
    the group trains on; a replicate's writes are on disk before its summary.json is. When the group
    fails, each replicate that had not ended records the failure in its folder; the error propagates."""
    if all(run.step_flops for run in runs):  # trainer.threads=auto: the stacked step is every replicate's at once
        threads = threads_for_step(resolve_threads("auto"), sum(run.step_flops for run in runs))
        torch.set_num_threads(threads)
        for run in runs:
            run.threads = threads
    writer = ckpt.BackgroundWriter(pending=2 * len(runs))
    for run in runs:
        run.checkpoint_writer = writer
    try:
        core.train(runs, StackedStepper(runs))
        writer.drain()
    except BaseException as err:
        writer.wait()  # what was submitted lands; the group's own error is the one reported
        for run in runs:
            if run.summary is None:
                with run.logging():
                    try:
                        record_failure(run.run_dir, run.cfg, run.overrides, run.created, err, run)
                    except BaseException:
                        pass
        raise
    finally:
        for run in runs:
            run.checkpoint_writer = None


def hand_over(run: Run) -> None:
    """After a preemption signal stopped training and the folder is complete (last.pt, summary.json
    `interrupted`, on every rank past the last barrier): call the handler training displaced.
    submitit's requeues the job from rank 0 and exits (SystemExit passes through); the requeued job
    resumes from last.pt. When it will not requeue (a time limit reached more often than
    hydra.launcher.max_num_timeout allows) it raises: the run stays `interrupted` for
    `trainlab resume-sweep`. Every rank calls it (submitit's only acts on rank 0)."""
    if run.status == "interrupted" and signal.SIGTERM in run.agreed:  # SLURM requeues by SIGTERM too
        slurm_requeue.leave_if_requeued()
    preempt = preemption_signal()
    handler = run.preempt_handler
    if run.status != "interrupted" or preempt not in run.agreed or not callable(handler):
        return  # a plain process (default handler): stopped and saved as for SIGTERM
    log.info(f"{signal.Signals(preempt).name}: run saved; handing over to the job's handler (requeue)")
    try:
        handler(preempt, None)
    except Exception as err:  # submitit: UncompletedJobError
        log.warning(f"not requeued ({err}); `trainlab resume-sweep` continues it from checkpoints/last.pt")
