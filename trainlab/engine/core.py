"""The training core: the life of a run, top to bottom, for one run or a stacked group of seeds.

    step-0 evaluation (a fresh start) -> epochs: steps, then for each run its evaluation and the one
    decision that follows (best, diverged, pruned, early stop, go on) -> last.pt -> the end: the
    test of the best checkpoint, summary.json, figures, hooks

`runs` are set up (trainlab.engine.run.Run.setup) and all at the same step; `stepper`
(trainlab.engine.steppers) takes their steps, one model or a stack. A group's last.pt files are
written as one unit (trainlab.engine.group_commit), so a killed group resumes from one common step.
Everything a caller adds (trackers, the Optuna reporter, diagnostics, figures) comes in as the
runs' hooks; nothing of it is imported here.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable

from trainlab.engine import group_commit
from trainlab.engine.console import Progress
from trainlab.engine.finish import finish
from trainlab.engine.run import Run
from trainlab.engine.run_state import last_state, rank_state, weights_state
from trainlab.engine.signals import StopOnSignal
from trainlab.engine.steppers import Stepper
from trainlab.engine import distributed

log = logging.getLogger("trainlab")


@dataclass
class Session:
    """What one training session of the runs shares: the signals received, the clock of the last
    checkpoint, the epochs trained since this process started on them."""

    signals: set = field(default_factory=set)
    agreed: set = field(default_factory=set)
    stop_signal: int | None = None
    preempt_handler: Callable | int | None = None  # a handler, or signal.SIG_DFL/SIG_IGN
    last_saved: float = field(default_factory=time.monotonic)
    epochs: int = 0


def train(runs: list[Run], stepper: Stepper) -> None:
    """Train `runs` to their ends; each run's summary is in run.summary when this returns."""
    lead, trainer = runs[0], runs[0].trainer
    active = list(runs)
    for run in runs:
        run.started = time.time()
        run.setup_s = run.started - run.created
    if lead.counters.step == 0 and not lead.resumed:  # decided alike on every rank (a collective)
        for run in runs:
            with run.logging():
                run.evaluate(initial=True)  # the untrained model: metrics.csv's step-0 row
    for run in list(active):
        verdict = run.hooks.before_training(run)
        if verdict:  # a later replicate of a pruned optuna trial
            log.info(f"{verdict} before training: the trial's first replicate was {verdict}")
            _end([run], active, stepper, verdict)
    session = Session()
    steps = stepper.batches_per_epoch()
    with Progress(trainer.progress, steps * trainer.epochs, lead.counters.step) as bar, StopOnSignal(session) as stop:
        while active and active[0].counters.epoch < trainer.epochs:
            if trainer.stop_after is not None and session.epochs >= trainer.stop_after:
                return _end(list(active), active, stepper, "interrupted")  # resumable: last.pt is current
            if stop.settle():
                _save(active, stepper, session)
                return _end(list(active), active, stepper, "interrupted", session)
            start = active[0].counters.batch_in_epoch
            if start == 0:
                for run in runs:
                    run.epoch_start_state = run.c.shuffle_gen.get_state()
            end = stepper.train_epoch(start=start, first_step=active[0].counters.step, on_step=bar.advance,
                                      stop=lambda: stop.after_step() or _timed_checkpoint_due(lead, session))
            for run in active:
                run.counters.step += end - start
                run.counters.skipped_steps = run.skipped_before + run.loop.skipped  # trainer.nonfinite=skip
            if end < steps:  # a signal arrived mid-epoch, or a timed checkpoint is due
                for run in active:
                    run.counters.batch_in_epoch = end
                _save(active, stepper, session)
                if session.agreed:
                    return _end(list(active), active, stepper, "interrupted", session)
                for run in runs:  # the epoch goes on from batch `end` of the same permutation, drawn again
                    run.c.shuffle_gen.set_state(run.epoch_start_state)
                continue
            session.epochs += 1
            ended = {}
            for run in active:
                with run.logging():
                    verdict = _end_of_epoch(run, stepper)
                if verdict:
                    ended[id(run)] = verdict
                elif run is lead and run.counters.epoch % trainer.eval_every == 0:
                    bar.advance(0, f"val acc {100 * run.last_row['val_acc']:.1f}%")
            due = lead.counters.epoch % trainer.checkpoint_every == 0 or lead.counters.epoch == trainer.epochs
            _save([r for r in active if due or id(r) in ended], stepper, session)
            for run in [r for r in active if id(r) in ended]:
                _end([run], active, stepper, ended[id(run)])
    _end(list(active), active, stepper, "completed")


def _end_of_epoch(run: Run, stepper: Stepper) -> str | None:
    """The end of an epoch for one run: its evaluation when due and the decision that follows.
    Returns how the run ends now ("diverged", "pruned", "completed" when stopped early) or None."""
    trainer, counters = run.trainer, run.counters
    stepper.sync(run)
    counters.batch_in_epoch = 0
    counters.epoch += 1
    if run.c.polyak is not None:
        run.c.polyak.after_epoch(run.c.model, counters.epoch)
    run.hooks.on_epoch_end(run)
    if counters.epoch % trainer.eval_every and counters.epoch != trainer.epochs:
        return None if run.pending_finite() else "diverged"  # no evaluation this epoch
    run.last_row = row = run.evaluate()
    if not math.isfinite(row["train_loss"]):
        return "diverged"
    if run.verdict:  # a hook's (the optuna pruner)
        log.info(f"{run.verdict} by the optuna sweep at epoch {counters.epoch}")
        return run.verdict
    if run.early_stop():
        counters.stopped_early = True
        log.info(f"early stopping at epoch {counters.epoch}: no improvement in {counters.evals_since_best} evaluations")
        return "completed"
    return None


def _end(ending: list[Run], active: list[Run], stepper: Stepper, status: str, session: Session | None = None) -> None:
    """`ending` runs leave the session with `status`: frozen, then finished in their folders."""
    for run in ending:
        stepper.sync(run)
        if session is not None:
            run.agreed, run.stop_signal, run.preempt_handler = set(session.agreed), session.stop_signal, \
                session.preempt_handler
        stepper.freeze(run)
        active.remove(run)
        with run.logging():
            finish(run, status)


def _timed_checkpoint_due(lead: Run, session: Session) -> bool:
    """trainer.checkpoint_every_minutes: due when that long has passed since the last last.pt (a clock
    read per step, no device sync). Single process only: DDP ranks would have to agree on the step."""
    every = lead.trainer.checkpoint_every_minutes
    if every is None or not lead.trainer.save_checkpoints or lead.c.dist.world > 1:
        return False
    return time.monotonic() - session.last_saved >= 60.0 * every


def _save(runs: list[Run], stepper: Stepper, session: Session) -> None:
    """last.pt of `runs`, as one unit when there are several (trainlab.engine.group_commit)."""
    session.last_saved = time.monotonic()
    if not runs or not runs[0].trainer.save_checkpoints:
        return
    states = []
    for run in runs:
        stepper.sync(run)
        c = run.c
        # every rank's own states, gathered on rank 0: a collective, so all ranks save at the same points
        ranks = distributed.gather_object(rank_state(c, run.pending)) if c.dist.world > 1 else None
        if not run.main:
            continue
        state = last_state(run, c, run.pending)
        if ranks is not None:
            state["ranks"] = ranks  # indexed by rank
        states.append((run, state))
    if len(states) == 1:
        run, state = states[0]
        run.checkpoints.save_atomic(state, run.ckpt_dir / "last.pt")
    elif states:
        for run, state in states:
            run.checkpoints.save_atomic(state, group_commit.staged(run.run_dir))
        writer, folders = states[0][0].checkpoints, [run.run_dir for run, _ in states]
        if hasattr(writer, "call"):  # the group's background writer: after the files above are written
            writer.call(lambda: group_commit.commit(folders))
        else:
            group_commit.commit(folders)
    for run, _ in states:
        if run.trainer.snapshots:
            snapshot = weights_state(run, run.c, run.c.model.state_dict(), epoch=run.counters.epoch)
            run.checkpoints.save_atomic(snapshot, run.ckpt_dir / f"snapshot_e{run.counters.epoch:03d}.pt")
