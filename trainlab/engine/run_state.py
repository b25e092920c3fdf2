"""What a run's checkpoints hold, and how a run is put back from them.

last.pt holds everything a bit-identical resume needs: model, optimizer, schedule, scaler,
EMA, the Polyak average, counters, every RNG state, the data order (the epoch's starting
shuffle state when stopped mid-epoch), the epoch's partial sums, the per-step losses, the preprocessing
statistics and the resolved config. With several ranks, each rank's own RNG streams,
augmentation generator and partial sums are kept under `ranks`.
"""
import math
from dataclasses import asdict, dataclass

import torch

from trainlab.engine import checkpoint as ckpt
from trainlab.engine import distributed


@dataclass
class Counters:
    epoch: int = 0                 # completed epochs
    step: int = 0                  # optimizer steps taken
    best_value: float | None = None
    best_epoch: int = 0
    best_step: int = 0
    best_val_loss: float = math.nan
    best_val_acc: float = math.nan
    evals_since_best: int = 0      # early stopping patience counter
    elapsed_s: float = 0.0         # training time of earlier sessions (resume)
    stopped_early: bool = False
    batch_in_epoch: int = 0        # > 0 when stopped mid-epoch (a signal): where the epoch resumes
    skipped_steps: int = 0         # steps skipped for non-finite values (trainer.nonfinite=skip)
    evaluations: int = 0           # rows written to metrics.csv: a resume checks the file still holds them


def _pending(pending) -> dict:
    return {"sums": pending.sums.cpu(), "losses": [t.cpu() for t in pending.step_losses]}


def preprocess_state(c) -> dict:
    return {k: v.cpu() for k, v in c.preprocess.state_dict().items()}


def last_state(run, c, pending) -> dict:
    """The content of checkpoints/last.pt for `run` now."""
    return {
        "model": c.model.state_dict(),
        "optimizer": c.optimizer.state_dict(),
        "schedule": c.schedule.state_dict(),
        "scaler": c.scaler.state_dict(),
        "ema": c.ema.state_dict() if c.ema is not None else None,
        "polyak": c.polyak.state_dict() if c.polyak is not None else None,
        "counters": asdict(run.counters) | {"elapsed_s": run.elapsed()},
        "rng": ckpt.rng_state(),
        "data": {"shuffle": c.shuffle_gen.get_state(), "augment": c.aug_gen.get_state(),
                 "epoch_start": run.epoch_start_state if run.counters.batch_in_epoch else None},
        "pending": _pending(pending),
        "step_losses": torch.tensor(run.step_losses, dtype=torch.float64),
        "preprocess": preprocess_state(c),
        "config": run.config_dict(),
        # live diagnostics' sums since the last evaluation (trainer.diagnostics): a mid-epoch resume
        # reports the interrupted epoch's diag/* columns as the uninterrupted run does
        "diagnostics": run.loop.diag.state_dict() if run.loop.diag is not None else None,
    }


def rank_state(c, pending) -> dict:
    """What differs between ranks: the global RNGs (dropout), the augmentation generator and the
    epoch's partial sums. Rank 0's are also the checkpoint's top-level `rng`, `data`, `pending`."""
    return {"rng": ckpt.rng_state(), "augment": c.aug_gen.get_state(), "pending": _pending(pending)}


def weights_state(run, c, weights: dict, **extra) -> dict:
    """best.pt and snapshot_eNNN.pt: weights with what is needed to evaluate them alone."""
    return {"model": weights, **extra, "preprocess": preprocess_state(c), "config": run.config_dict()}


def restore(run, c, state: dict, pending) -> None:
    """Put `run`, its components and this process's RNGs back to `state` (last.pt's content)."""
    c.model.load_state_dict(state["model"])
    c.optimizer.load_state_dict(state["optimizer"])
    c.schedule.load_state_dict(state["schedule"])
    c.scaler.load_state_dict(state["scaler"])
    if c.ema is not None and state.get("ema") is not None:
        c.ema.load_state_dict(state["ema"])
    if c.polyak is not None and state.get("polyak") is not None:
        c.polyak.load_state_dict(state["polyak"])
    run.counters = Counters(**state["counters"])
    ckpt.restore_rng_state(state["rng"])
    c.shuffle_gen.set_state(state["data"]["shuffle"])
    c.aug_gen.set_state(state["data"]["augment"])
    if run.counters.batch_in_epoch:
        # the epoch's permutation is drawn again; its starting state is kept for the next mid-epoch save
        run.epoch_start_state = state["data"]["epoch_start"]
        c.shuffle_gen.set_state(run.epoch_start_state)
    mine = ckpt.own_rank_state(state, c.dist)
    if mine is not None:  # several processes wrote it: this rank's own RNG, augmentation and sums
        ckpt.restore_rng_state(mine["rng"])
        c.aug_gen.set_state(mine["augment"])
    else:
        mine = state
        if c.dist.rank > 0:  # a checkpoint with fewer ranks than now: fresh per-rank streams (warned)
            torch.manual_seed(distributed.rank_seed(run.spec.seed, c.dist.rank, run.counters.step))
            c.aug_gen.manual_seed(distributed.rank_seed(run.spec.seed + 2, c.dist.rank, run.counters.step))
            mine = {"pending": {"sums": torch.zeros_like(pending.sums), "losses": []}}
    run.restored_diagnostics = state.get("diagnostics")  # loaded by the diagnostics hook, which comes later
    pending.sums.copy_(mine["pending"]["sums"])
    pending.step_losses = [t.to(pending.sums.device) for t in mine["pending"]["losses"]]
    run.step_losses = state["step_losses"].tolist()
    # a run stopped before its first evaluation has no metrics.csv: a header-only one written
    # here would fix the columns without the EMA and diagnostics extras
    if run.main and run.metrics.path.exists():
        run.metrics.truncate_after(run.counters.step)
