"""Stopping a run cleanly on a signal, on one process or on all ranks of a DDP job together.

SIGINT/SIGTERM (Ctrl-C, `kill`, torchrun passing them on) and the preemption signal SLURM
sends a submitit job before its time limit or on preemption (SIGUSR2) all end training after
the current step, with checkpoints/last.pt written and the run `interrupted`; trainlab.engine.run
then hands the preemption signal on to submitit, which requeues the job.
"""
import logging
import os
import signal
import threading

from trainlab.engine import distributed

log = logging.getLogger("trainlab")


def preemption_signal() -> int | None:
    """The signal SLURM sends a submitit job before its time limit or on preemption: SIGUSR2
    unless $SUBMITIT_PREEMPT_SIGNAL names another (submitit's own rule); None where it does not exist."""
    return getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2"), None)


class StopOnSignal:
    """Stop training cleanly on a signal: finish the current step, save checkpoints/last.pt, end `interrupted`.

    - SIGINT/SIGTERM: a second one (after any signal) stops at once (KeyboardInterrupt).
    - The preemption signal (SIGUSR2, see preemption_signal): never stops at once, since on
      preemption it may follow a SIGTERM. Once the run folder is complete, `Run.hand_over`
      passes it to the handler it displaced: submitit's, which requeues the job.

    Several ranks receive a signal at different moments but must stop after the same step (they
    meet in collectives): they agree through a distributed.FlagVote, which never blocks a step.
    """

    def __init__(self, run):
        self.run, self.previous = run, {}
        self.preempt = preemption_signal()
        self.handled = list(dict.fromkeys(s for s in (signal.SIGINT, signal.SIGTERM, self.preempt) if s))
        self.vote = distributed.FlagVote(len(self.handled)) if distributed.current().world > 1 else None

    def handle(self, signum, frame):
        run = self.run
        if signum != self.preempt and run.signals:  # this process's second signal
            raise KeyboardInterrupt
        run.signals.add(signum)
        if run.stop_signal is None:
            run.stop_signal = signum
            log.warning(f"{signal.Signals(signum).name}: finishing the current step, saving checkpoints/last.pt, "
                        "then stopping")

    def _decide(self, agreed_flags: list[int] | None) -> bool:
        """Stop? With several ranks, as agreed: a rank no signal reached stops with the others."""
        run = self.run
        if agreed_flags is None:  # one process
            run.agreed = set(run.signals)
        else:
            run.agreed = {s for s, f in zip(self.handled, agreed_flags) if f}
            if run.agreed and run.stop_signal is None:
                run.stop_signal = next(s for s in self.handled if s in run.agreed)
        return bool(run.agreed)

    def _flags(self) -> list[int]:
        return [int(s in self.run.signals) for s in self.handled]

    def after_step(self) -> bool:
        """Called by the loop after every step: stop now?"""
        return self._decide(self.vote.after_step(self._flags()) if self.vote else None)

    def settle(self) -> bool:
        """At an epoch boundary: stop now? (every rank gets the final word)"""
        return self._decide(self.vote.settle(self._flags()) if self.vote else None)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in self.handled:
                self.previous[sig] = signal.signal(sig, self.handle)
            self.run.preempt_handler = self.previous.get(self.preempt)
        return self

    def __exit__(self, exc_type, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        if exc_type is None and self.vote is not None:
            self.vote.close()  # a vote still in flight: every rank has the same one
