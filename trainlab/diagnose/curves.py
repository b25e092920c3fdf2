"""Say what is wrong with a finished run by reading its curves.

The engine calls `diagnose` once at the end of a run with the evaluation rows
(what metrics.csv holds) and the loss of every optimizer step. Each detector
below looks for one pattern a practitioner would spot by eye on curves.png and
turns it into a `Finding`: what the curves show, with numbers, and what to try.
An empty list means the curves look healthy.

The detectors that read the evaluation rows (overfitting, underfitting,
noisy_validation) live in generalization.py; this module reads the per-step
loss, runs them all, and formats the result.

Conventions: `step_losses[i]` is the loss of optimizer step i (0-based), so a
step reported from the per-step curve is an index into it; a step reported from
an evaluation is that row's own `step`. Per-step losses are minibatch estimates,
so detectors compare medians over bins of steps, never single batches.
"""
from __future__ import annotations

import math

import numpy as np

from trainlab.diagnose.findings import Finding, as_float
from trainlab.diagnose.generalization import evaluation_findings

__all__ = ["Finding", "diagnose", "format_findings"]

# --- how much curve is needed before judging it -------------------------------
# Below this many steps a run is a smoke test: the loss has not had time to show
# any trend, so the per-step detectors stay silent rather than guess.
MIN_STEPS = 50
# Bins of at least 10 steps (at most 100 bins per run) make a median that a
# few odd batches cannot move, while keeping enough resolution to place a plateau.
MIN_BIN_STEPS = 10
MAX_BINS = 100
# The loss a run ended at: median of its last 10% of steps (at least 20 steps).
LATE_FRACTION = 0.10
LATE_MIN_STEPS = 20

# --- not_learning / exploding / slow_start (per-step training loss) -----------
# A network that learns anything gets well below chance level; never getting
# 10% below the uniform-guess loss means the weights are effectively not moving.
NOT_LEARNING_MAX_DROP = 0.10
# Ending 1.5x above where it started is far outside minibatch noise: the
# optimizer is making the loss worse.
EXPLODING_RATIO = 1.5
# Or: having fallen, the loss climbs back to 2x its best level, by at least 10%
# of the initial loss (so a tiny loss doubling from 0.001 to 0.002 is not it).
REBOUND_RATIO = 2.0
REBOUND_MIN_RISE = 0.10
# "Near the initial loss": within 5% of it.
PLATEAU_BAND = 0.05
# A plateau is long when it lasts 20% of the run (a healthy run, or a short
# warmup, leaves the initial loss within a few percent of its steps), ...
SLOW_START_MIN_PLATEAU = 0.20
# ... the loss then ends at least 30% below the initial loss (else it is
# not_learning), ...
SLOW_START_MIN_DROP = 0.30
# ... and the drop is sudden: half of it happens in under half the time the
# plateau lasted (a slow steady decline is a low learning rate, not this).
SLOW_START_MAX_DROP_RATIO = 0.5
# On a short run bins are coarse: one noisy bin near the initial loss is not a
# plateau, three in a row are.
SLOW_START_MIN_BINS = 3

# --- periodic (per-step training loss) -----------------------------------------
# The autocorrelation at a lag of one epoch needs 3 epochs of steps to be
# estimated, and an epoch of at least 4 steps to have neighbouring lags.
PERIODIC_MIN_EPOCHS = 3
PERIODIC_MIN_PERIOD = 4
# Unshuffled batches repeat the same examples each epoch: the autocorrelation
# at that lag is clearly positive (0.3), stands 0.2 above the lags around it,
# and is 4 standard errors away from what white noise gives (1/sqrt(pairs)),
# which keeps short runs with few pairs from firing on chance.
PERIODIC_MIN_AUTOCORR = 0.3
PERIODIC_MIN_EXCESS = 0.2
PERIODIC_MIN_Z = 4.0


def diagnose(rows, step_losses, initial_loss, steps_per_epoch, val_size) -> list[Finding]:
    """Findings about a run's curves, most fundamental first; [] when healthy.

    rows: one dict per evaluation (step, epoch, lr, train_loss, train_acc,
    val_loss, val_acc); step_losses: the training loss of every optimizer step;
    initial_loss: the loss of a uniformly guessing model (ln C for cross-entropy).
    """
    # the evaluation before the first step (metrics.csv's step-0 row) has no training numbers
    rows = [r for r in rows or [] if not _before_training(r)]
    losses = np.asarray([] if step_losses is None else step_losses, dtype=float).ravel()
    diverged = _diverged(rows, losses)
    if diverged:
        # Everything after a nan is garbage: other findings would only confuse.
        return [diverged]

    findings: list[Finding] = []
    bad_loss = None
    if len(losses) >= MIN_STEPS:
        curve = _Curve(losses)
        ref = as_float(initial_loss)
        ref = ref if math.isfinite(ref) and ref > 0 else float(curve.levels[0])
        # At most one of these: they are different readings of the same loss curve.
        bad_loss = _exploding(curve, ref) or _not_learning(curve, ref)
        findings.append(bad_loss or _slow_start(curve, ref))

    findings += evaluation_findings(rows, val_size, loss_is_broken=bool(bad_loss))
    findings.append(_periodic(losses, int(steps_per_epoch or 0)))
    return [f for f in findings if f is not None]


def format_findings(findings: list[Finding]) -> str:
    """One line per finding, for the terminal."""
    if not findings:
        return "healthy: no problems found in the curves"
    return "\n".join(f"{f.kind}: {f.message} -> {f.advice}" for f in findings)


# --- detectors ------------------------------------------------------------------


def _diverged(rows, losses: np.ndarray) -> Finding | None:
    bad = np.flatnonzero(~np.isfinite(losses))
    if len(bad):
        step, what, value = int(bad[0]), "training loss", losses[bad[0]]
    else:
        # A finite training curve can still hide an inf validation loss.
        # (A missing value, None, is no evidence of divergence.)
        hit = next(((r, k) for r in rows for k in ("train_loss", "val_loss")
                    if r.get(k) is not None and not math.isfinite(as_float(r[k]))), None)
        if hit is None:
            return None
        row, key = hit
        step, what, value = int(as_float(row.get("step", 0))), key.replace("_", " "), as_float(row[key])
    lr = _lr_at(rows, step)
    at_lr = f" (learning rate {lr:.3g})" if lr is not None else ""
    return Finding(
        "diverged",
        f"{what} became {value} at step {step}{at_lr}.",
        "Lower the learning rate, add gradient clipping or warmup, and check the inputs for nan/inf.",
        step,
    )


def _exploding(c: _Curve, ref: float) -> Finding | None:
    start = max(ref, c.levels[0])
    if c.late > EXPLODING_RATIO * start:
        step = int(c.steps[np.argmax(c.levels > EXPLODING_RATIO * start)])
        return Finding(
            "exploding",
            f"training loss grew from {start:.3g} to {c.late:.3g} ({c.late / start:.1f}x) by the end of the run "
            f"without becoming non-finite.",
            "Lower the learning rate (3-10x), or add warmup or gradient clipping.",
            step,
        )
    best = int(np.argmin(c.levels))
    low = c.levels[best]
    if c.late > REBOUND_RATIO * low and c.late - low > REBOUND_MIN_RISE * ref:
        step = int(c.steps[best])
        return Finding(
            "exploding",
            f"training loss fell to {low:.3g} around step {step} and then climbed back to {c.late:.3g} by the end.",
            "Lower the learning rate or decay it over the run (step or cosine schedule).",
            step,
        )
    return None


def _not_learning(c: _Curve, ref: float) -> Finding | None:
    low = c.levels.min()
    if low < (1 - NOT_LEARNING_MAX_DROP) * ref:
        return None
    return Finding(
        "not_learning",
        f"training loss stayed near {c.late:.3g} for {c.n} steps and never went below {low:.3g}, "
        f"against {ref:.3g} for a model that guesses uniformly.",
        "Raise the learning rate (10x) and check that gradients reach the weights "
        "(frozen or detached layers, saturated or dead activations, zero init).",
    )


def _slow_start(c: _Curve, ref: float) -> Finding | None:
    # The plateau ends where the loss was last near its initial value, so one
    # noisy bin dipping below the band does not end it early.
    near = np.flatnonzero(c.levels >= (1 - PLATEAU_BAND) * ref)
    leave = near[-1] + 1 if len(near) else 0
    if leave < SLOW_START_MIN_BINS or leave >= len(c.levels):
        return None
    plateau = int(c.steps[leave])
    if (
        plateau < SLOW_START_MIN_PLATEAU * c.n
        # Mostly near the initial loss: not a slide from far above it, nor a
        # loss that fell early and merely touched the band again later.
        or abs(np.median(c.levels[:leave]) - ref) > PLATEAU_BAND * ref
        or c.late > (1 - SLOW_START_MIN_DROP) * ref
    ):
        return None
    halfway = np.flatnonzero(c.levels[leave:] <= (ref + c.late) / 2)
    if not len(halfway) or c.steps[leave + halfway[0]] - plateau > SLOW_START_MAX_DROP_RATIO * plateau:
        return None
    return Finding(
        "slow_start",
        f"training loss sat near its initial {ref:.3g} for the first {plateau} steps ({plateau / c.n:.0%} of the run), "
        f"then dropped suddenly to {c.late:.3g}.",
        "Initialize at a larger scale (kaiming or xavier instead of a small normal) or add normalization; "
        "a long learning-rate warmup also gives this plateau.",
        plateau,
    )



def _periodic(losses: np.ndarray, period: int) -> Finding | None:
    if period < PERIODIC_MIN_PERIOD or len(losses) < PERIODIC_MIN_EPOCHS * period:
        return None
    # The first epoch is mostly the initial drop; leave it out when enough remains.
    x = losses[period:] if len(losses) >= (PERIODIC_MIN_EPOCHS + 1) * period else losses
    # Minibatch noise scales with the loss; on a log scale the early steps, when
    # the loss is large, do not drown out the rest of the run.
    if np.all(x > 0):
        x = np.log(x)
    # Subtracting the moving average over one epoch removes the downward trend
    # yet leaves a pattern of exactly that period intact: it sums to a constant
    # over any window of one period.
    trend = np.convolve(x, np.ones(period) / period, mode="valid")
    resid = x[period // 2 : period // 2 + len(trend)] - trend
    r = _autocorr(resid, max_lag=3 * period // 2)
    if r is None:
        return None
    around = np.r_[period // 2 : period, period + 1 : len(r)]
    at, base = r[period], float(np.median(r[around]))
    z = at * math.sqrt(len(resid) - period)
    if at < PERIODIC_MIN_AUTOCORR or at - base < PERIODIC_MIN_EXCESS or z < PERIODIC_MIN_Z:
        return None
    return Finding(
        "periodic",
        f"the per-step loss repeats every epoch: autocorrelation {at:.2f} at a lag of {period} steps "
        f"against {base:.2f} at the lags around it.",
        "Shuffle the training data every epoch: the batches arrive in the same order each time.",
    )


# --- helpers -----------------------------------------------------------------------


class _Curve:
    """The per-step loss as medians over bins of steps, plus where it ended."""

    def __init__(self, losses: np.ndarray):
        self.n = len(losses)
        bins = np.array_split(np.arange(self.n), max(1, min(MAX_BINS, self.n // MIN_BIN_STEPS)))
        self.steps = np.array([b[0] for b in bins])  # first step of each bin
        self.levels = np.array([np.median(losses[b]) for b in bins])
        self.late = float(np.median(losses[-max(LATE_MIN_STEPS, int(self.n * LATE_FRACTION)) :]))


def _autocorr(x: np.ndarray, max_lag: int) -> np.ndarray | None:
    """Autocorrelation at lags 0..max_lag (each lag averaged over its own pairs), via FFT."""
    x = x - x.mean()
    n = len(x)
    if n <= max_lag or not np.any(x):
        return None
    spectrum = np.fft.rfft(x, 2 * n)  # zero-padded so the correlation does not wrap around
    cov = np.fft.irfft(spectrum * np.conj(spectrum), 2 * n)[: max_lag + 1] / (n - np.arange(max_lag + 1))
    return cov / cov[0]


def _before_training(row) -> bool:
    train_loss = row.get("train_loss")
    return as_float(row.get("step", 1)) == 0 and (train_loss is None or not math.isfinite(as_float(train_loss)))


def _lr_at(rows, step: int) -> float | None:
    """Learning rate of the last evaluation at or before `step` (else the first one)."""
    before = [r for r in rows if as_float(r.get("step", math.inf)) <= step] or list(rows[:1])
    lr = as_float(before[-1].get("lr", math.nan)) if before else math.nan
    return lr if math.isfinite(lr) else None
