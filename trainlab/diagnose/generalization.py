"""Detectors that read the evaluation rows: overfitting, underfitting, noisy_validation.

`diagnose` in curves.py calls `evaluation_findings` with the evaluation rows
(what metrics.csv holds); the detectors that read the per-step loss curve live
there. A step reported here is the evaluation row's own `step`.
"""
from __future__ import annotations

import math

import numpy as np

from trainlab.diagnose.findings import Finding, as_float

# Gaps, rises and jumps between evaluations need a few points: with 1-3
# evaluations any "trend" is the first epoch's transient.
MIN_EVALS = 4

# --- overfitting / underfitting (evaluation rows) ------------------------------
# Where a run ended, on the evaluation curves: the median of its last 3
# evaluations, so that one lucky or unlucky evaluation decides nothing.
END_EVALS = 3
# Validation loss ending 10% above its minimum, at least 2 evaluations after
# it, while training loss kept falling (by 10% more): a sustained rise, not
# noise. The rise must also exceed 3x the validation loss's own
# evaluation-to-evaluation noise, else the lucky minimum of a converged, jittery
# curve would pass for a rise.
OVERFIT_VAL_RISE = 0.10
OVERFIT_MIN_EVALS_AFTER_BEST = 2
OVERFIT_TRAIN_FALL = 0.10
OVERFIT_RISE_OVER_NOISE = 3.0
# Or: train accuracy 10 points above validation and 3 more points than at
# mid-run; a gap that is large but stable is a regularized model, not this.
OVERFIT_ACC_GAP = 0.10
OVERFIT_GAP_GROWTH = 0.03
# Or, read from the eval-mode training sample (train_eval_acc, no dropout or augmentation, so
# the gap is clean): a gap of 10 points or more at the end is overfitting, steady or not. (The
# running train accuracy above is biased by dropout and augmentation, hence the growth test.)
OVERFIT_CLEAN_GAP = 0.10
# The architectures trainlab builds can fit MNIST/CIFAR-scale training sets far
# beyond 80%; below that with val within 5 points, capacity or time is short.
UNDERFIT_TRAIN_ACC = 0.80
UNDERFIT_MAX_GAP = 0.05
# Training loss still falling 5% over the last quarter: more epochs would help.
UNDERFIT_STILL_FALLING = 0.05

# --- noisy_validation (evaluation rows) ----------------------------------------
# Validation accuracy moving 3x more than training accuracy between
# evaluations, and by at least 2 points (typical move), is noise worth naming;
# below 2 points it does not change which run or checkpoint looks best.
NOISY_RATIO = 3.0
NOISY_MIN_JUMP = 0.02
# Below this many examples, a small validation set is the likely cause.
SMALL_VAL_SIZE = 1000


def evaluation_findings(rows, val_size, loss_is_broken: bool) -> list[Finding]:
    """Findings from the evaluation rows, in report order; [] with too few evaluations.

    loss_is_broken: the per-step loss already showed exploding or not_learning.
    """
    ev = _evals(rows)
    if len(ev["step"]) < MIN_EVALS:
        return []
    findings = [_overfitting(ev)]
    # A broken optimizer already explains poor accuracy; a model with a
    # growing gap is not short of capacity.
    if not (loss_is_broken or findings[0]):
        findings.append(_underfitting(ev))
    findings.append(_noisy_validation(ev, val_size))
    return [f for f in findings if f is not None]


# --- detectors ------------------------------------------------------------------


def _overfitting(ev: dict) -> Finding | None:
    advice = "Add regularization (weight decay, dropout, augmentation) or more data, and keep the best checkpoint."
    train, val, steps = ev["train_loss"], ev["val_loss"], ev["step"]
    best = int(np.argmin(val))
    val_end, train_end = _end(val), _end(train)
    if (
        len(val) - 1 - best >= OVERFIT_MIN_EVALS_AFTER_BEST
        and val_end > (1 + OVERFIT_VAL_RISE) * val[best]
        and val_end - val[best] > OVERFIT_RISE_OVER_NOISE * _jitter(val)
        and train_end < (1 - OVERFIT_TRAIN_FALL) * train[best]
    ):
        return Finding(
            "overfitting",
            f"validation loss rose from its minimum {val[best]:.3g} at step {steps[best]} to {val_end:.3g} "
            f"while training loss kept falling ({train[best]:.3g} -> {train_end:.3g}).",
            advice,
            int(steps[best]),
        )
    if not ev["has_acc"]:
        return None
    gap = ev["train_acc"] - ev["val_acc"]
    mid = len(gap) // 2
    gap_mid, gap_end = _end(gap[: mid + 1]), _end(gap)
    if ev["has_clean"]:
        clean_gap = ev["train_eval_acc"] - ev["val_acc"]
        clean_end = _end(clean_gap)
        if clean_end >= OVERFIT_CLEAN_GAP:
            return Finding(
                "overfitting",
                f"at the end (step {steps[-1]}) the model fits its training data far better than validation: "
                f"train {100 * _end(ev['train_eval_acc']):.1f}% vs val {100 * _end(ev['val_acc']):.1f}% "
                f"(both in eval mode), a {100 * clean_end:.1f}-point gap (flagged from {100 * OVERFIT_CLEAN_GAP:.0f}).",
                advice,
                int(steps[np.argmax(ev["val_acc"])]),
            )
    if gap_end >= OVERFIT_ACC_GAP and gap_end - gap_mid >= OVERFIT_GAP_GROWTH:
        return Finding(
            "overfitting",
            f"the train/val accuracy gap widened from {100 * gap_mid:.1f} points around step {steps[mid]} "
            f"to {100 * gap_end:.1f} points at the end (step {steps[-1]}).",
            advice,
            int(steps[np.argmax(ev["val_acc"])]),  # the best checkpoint by validation accuracy
        )
    return None


def _underfitting(ev: dict) -> Finding | None:
    if not ev["has_acc"]:
        return None
    train_acc, val_acc = _end(ev["train_acc"]), _end(ev["val_acc"])
    if train_acc >= UNDERFIT_TRAIN_ACC or train_acc - val_acc >= UNDERFIT_MAX_GAP:
        return None
    loss = ev["train_loss"]
    before = loss[len(loss) - 1 - max(1, len(loss) // 4)]
    fall = 1 - loss[-1] / before if before > 0 else 0.0
    if fall > UNDERFIT_STILL_FALLING:
        advice = f"Train longer: training loss was still falling ({fall:.0%} over the last quarter of the run)."
    else:
        advice = "Use a bigger model (wider or deeper) or less regularization: training loss has levelled off."
    return Finding(
        "underfitting",
        f"training accuracy is only {train_acc:.1%} and validation accuracy ({val_acc:.1%}) is close behind, "
        f"so the model does not fit even its training data.",
        advice,
    )


def _noisy_validation(ev: dict, val_size: int) -> Finding | None:
    if not ev["has_acc"]:
        return None
    val_jump = float(np.median(np.abs(np.diff(ev["val_acc"]))))
    train_jump = float(np.median(np.abs(np.diff(ev["train_acc"]))))
    if val_jump < NOISY_MIN_JUMP or val_jump < NOISY_RATIO * train_jump:
        return None
    val_size = int(val_size or 0)
    size = f"; with {val_size} validation examples one example is {100 / val_size:.2g} points" if val_size > 0 else ""
    if 0 < val_size < SMALL_VAL_SIZE:
        advice = "Use a larger validation split so single examples stop moving the metric, and compare runs over seeds."
    else:
        advice = "Decay the learning rate towards the end or evaluate an EMA of the weights: the model itself is unstable."
    return Finding(
        "noisy_validation",
        f"validation accuracy moves by a median of {100 * val_jump:.1f} points between evaluations against "
        f"{100 * train_jump:.1f} for training accuracy{size}.",
        advice,
    )


# --- helpers -----------------------------------------------------------------------


def _evals(rows) -> dict:
    """Evaluation columns as arrays, keeping rows whose losses are finite."""
    cols = {k: np.array([as_float(r.get(k, math.nan)) for r in rows], dtype=float)
            for k in ("step", "train_loss", "val_loss", "train_acc", "val_acc", "train_eval_acc")}
    keep = np.isfinite(cols["train_loss"]) & np.isfinite(cols["val_loss"])
    ev = {k: v[keep] for k, v in cols.items()}
    ev["step"] = np.nan_to_num(ev["step"]).astype(int)
    ev["has_acc"] = bool(np.isfinite(ev["train_acc"]).all() and np.isfinite(ev["val_acc"]).all())
    ev["has_clean"] = bool(ev["has_acc"] and np.isfinite(ev["train_eval_acc"]).all())
    return ev


def _end(x: np.ndarray) -> float:
    """Where an evaluation curve ended: median of its last END_EVALS points."""
    return float(np.median(x[-END_EVALS:]))


def _jitter(x: np.ndarray) -> float:
    """Evaluation-to-evaluation noise of a curve, blind to its trend.

    Second differences cancel any locally straight trend; for independent
    noise of standard deviation s their median magnitude is about 1.65 s.
    """
    return float(np.median(np.abs(np.diff(x, 2))) / 1.65) if len(x) >= 3 else 0.0
