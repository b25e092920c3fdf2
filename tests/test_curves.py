"""Curve diagnosis on synthetic runs: each pathology is found, healthy runs are left alone."""
import json
import math

import numpy as np
import pytest

from trainlab.diagnose.curves import Finding, diagnose, format_findings

CHANCE = math.log(10)  # cross-entropy of a uniform guess over 10 classes
SPE = 20  # steps per epoch
EPOCHS = 30


def decay(n, floor=0.1, start=CHANCE, tau=0.1):
    """A smooth exponential decay over n steps, time constant tau * n."""
    return floor + (start - floor) * np.exp(-np.arange(n) / (tau * n))


def noisy(mean, seed=0, rel=0.05):
    """Minibatch noise: each step's loss off its mean by ~5%."""
    return mean * (1 + rel * np.random.default_rng(seed).standard_normal(len(mean)))


def acc_of(loss):
    """Accuracy that tracks the loss: 10% at chance, ~96% at loss 0.1."""
    return np.clip(0.1 + 0.9 * (1 - np.asarray(loss) / CHANCE), 0.0, 1.0)


def make_rows(train_loss, val_loss, train_acc=None, val_acc=None, spe=SPE):
    """One evaluation row per epoch, as the engine records them."""
    train_acc = acc_of(train_loss) if train_acc is None else train_acc
    val_acc = train_acc - 0.02 if val_acc is None else val_acc
    return [
        dict(step=(e + 1) * spe, epoch=e + 1, lr=0.1, train_loss=float(tl), train_acc=float(ta),
             val_loss=float(vl), val_acc=float(va))
        for e, (tl, vl, ta, va) in enumerate(zip(train_loss, val_loss, train_acc, val_acc))
    ]


def epoch_means(step_losses, spe=SPE):
    return np.asarray(step_losses).reshape(-1, spe).mean(axis=1)


def healthy_run(seed=0, epochs=EPOCHS, spe=SPE):
    losses = noisy(decay(epochs * spe), seed)
    train = epoch_means(losses, spe)
    return make_rows(train, train + 0.05, spe=spe), losses


def run_diagnose(rows, losses, spe=SPE, val_size=5000, initial_loss=CHANCE):
    return diagnose(rows, losses, initial_loss=initial_loss, steps_per_epoch=spe, val_size=val_size)


def kinds(rows, losses, **kw):
    return [f.kind for f in run_diagnose(rows, losses, **kw)]


@pytest.mark.parametrize("seed", range(5))
def test_healthy_curve_has_no_findings(seed):
    rows, losses = healthy_run(seed)
    assert run_diagnose(rows, losses) == []


def test_nan_loss_is_diverged_at_its_first_step_and_nothing_else():
    rows, losses = healthy_run()
    losses[137:] = np.nan
    for row in rows:
        if row["step"] > 137:
            row.update(train_loss=math.nan, val_loss=math.nan, train_acc=0.1, val_acc=0.1)
    findings = run_diagnose(rows, losses)
    assert [f.kind for f in findings] == ["diverged"]
    assert findings[0].step == 137
    assert "nan at step 137" in findings[0].message


def test_inf_validation_loss_is_diverged_at_that_evaluation():
    rows, losses = healthy_run()
    rows[10]["val_loss"] = math.inf
    findings = run_diagnose(rows, losses)
    assert [f.kind for f in findings] == ["diverged"]
    assert findings[0].step == rows[10]["step"]


def test_flat_loss_at_chance_is_not_learning_and_not_also_underfitting():
    losses = noisy(np.full(EPOCHS * SPE, CHANCE), rel=0.01)
    chance_acc = np.full(EPOCHS, 0.1)
    rows = make_rows(epoch_means(losses), epoch_means(losses), chance_acc, chance_acc)
    assert kinds(rows, losses) == ["not_learning"]


def test_loss_growing_without_nan_is_exploding():
    n = EPOCHS * SPE
    losses = noisy(CHANCE * (1 + 2 * np.arange(n) / n))
    train = epoch_means(losses)
    found = kinds(make_rows(train, train, np.full(EPOCHS, 0.1), np.full(EPOCHS, 0.1)), losses)
    # The learning rate explains the poor accuracy: no extra underfitting finding.
    assert found == ["exploding"]


def test_loss_climbing_back_after_falling_is_exploding_at_its_best_step():
    n = EPOCHS * SPE
    down = decay(n // 2, floor=0.3, tau=0.2)
    up = np.linspace(0.3, 1.5, n - n // 2)
    losses = noisy(np.concatenate([down, up]))
    train = epoch_means(losses)
    findings = run_diagnose(make_rows(train, train + 0.05), losses)
    exploding = [f for f in findings if f.kind == "exploding"]
    assert len(exploding) == 1
    assert abs(exploding[0].step - n // 2) <= 0.1 * n


def test_long_plateau_then_sudden_drop_is_slow_start():
    n = EPOCHS * SPE
    t = np.arange(n)
    mean = CHANCE - (CHANCE - 0.1) / (1 + np.exp(-(t - 0.45 * n) / (0.01 * n)))  # drop centred at 45%
    losses = noisy(mean, rel=0.02)
    train = epoch_means(losses)
    findings = run_diagnose(make_rows(train, train + 0.05), losses)
    assert [f.kind for f in findings] == ["slow_start"]
    assert 0.35 * n <= findings[0].step <= 0.45 * n


def test_slow_steady_decline_is_not_slow_start():
    n = EPOCHS * SPE
    losses = noisy(np.linspace(CHANCE, 1.0, n), rel=0.02)
    train = epoch_means(losses)
    assert "slow_start" not in kinds(make_rows(train, train + 0.05), losses)


def test_validation_loss_rising_from_its_minimum_is_overfitting():
    rows, losses = healthy_run()
    train = np.array([r["train_loss"] for r in rows])
    val = 0.6 + 0.02 * (np.arange(EPOCHS) - 10) ** 2 / 10  # minimum at epoch index 10, then rising
    rows = make_rows(train, val)
    findings = run_diagnose(rows, losses)
    assert [f.kind for f in findings] == ["overfitting"]
    assert findings[0].step == rows[10]["step"]


def test_widening_accuracy_gap_is_overfitting():
    rows, losses = healthy_run()
    train = np.array([r["train_loss"] for r in rows])
    train_acc = acc_of(train)
    val_acc = train_acc - np.linspace(0.02, 0.20, EPOCHS)  # gap grows from 2 to 20 points
    assert kinds(make_rows(train, train + 0.05, train_acc, val_acc), losses) == ["overfitting"]


def test_large_but_stable_accuracy_gap_is_not_overfitting():
    rows, losses = healthy_run()
    train = np.array([r["train_loss"] for r in rows])
    train_acc = acc_of(train)
    assert run_diagnose(make_rows(train, train + 0.05, train_acc, train_acc - 0.12), losses) == []


@pytest.mark.parametrize("levelled", [True, False])
def test_poor_accuracy_without_gap_is_underfitting(levelled):
    n = EPOCHS * SPE
    mean = decay(n, floor=1.2, tau=0.1) if levelled else np.linspace(CHANCE, 1.2, n)
    losses = noisy(mean)
    train = epoch_means(losses)
    train_acc = np.linspace(0.3, 0.6, EPOCHS)
    findings = run_diagnose(make_rows(train, train + 0.02, train_acc, train_acc - 0.02), losses)
    assert [f.kind for f in findings] == ["underfitting"]
    assert ("bigger model" in findings[0].advice) == levelled
    assert ("Train longer" in findings[0].advice) == (not levelled)


@pytest.mark.parametrize("pattern", ["random_batches", "sorted_by_class"])
def test_loss_repeating_every_epoch_is_periodic(pattern):
    rng = np.random.default_rng(1)
    if pattern == "random_batches":  # each batch keeps its own examples, hence its own difficulty
        shape = rng.standard_normal(SPE)
    else:  # classes in blocks: a smooth pattern over the epoch
        shape = np.repeat(rng.standard_normal(5), SPE // 5)
    n = EPOCHS * SPE
    losses = noisy(decay(n) * (1 + 0.2 * np.tile(shape, EPOCHS)))
    train = epoch_means(losses)
    assert "periodic" in kinds(make_rows(train, train + 0.05), losses)


def test_periodic_needs_three_epochs_of_steps():
    spe = 100
    shape = np.random.default_rng(1).standard_normal(spe)
    losses = noisy(decay(2 * spe, tau=0.5) * (1 + 0.2 * np.tile(shape, 2)))
    train = epoch_means(losses, spe)
    assert "periodic" not in kinds(make_rows(train, train + 0.05, spe=spe), losses, spe=spe)


def test_validation_accuracy_jumping_on_a_small_set_is_noisy_validation():
    rows, losses = healthy_run()
    train = np.array([r["train_loss"] for r in rows])
    train_acc = acc_of(train)
    val_acc = train_acc - 0.02 + 0.04 * np.random.default_rng(2).standard_normal(EPOCHS)
    findings = run_diagnose(make_rows(train, train + 0.05, train_acc, val_acc), losses, val_size=100)
    noisy_val = [f for f in findings if f.kind == "noisy_validation"]
    assert len(noisy_val) == 1
    assert "100 validation examples" in noisy_val[0].message
    assert "larger validation split" in noisy_val[0].advice


@pytest.mark.parametrize("n_evals", [0, 1, 2])
@pytest.mark.parametrize("spe", [5, 20, 100])
def test_short_runs_do_not_crash_or_fire(n_evals, spe):
    # The first epochs of a healthy run: a falling loss, nothing to report yet.
    rows, losses = healthy_run(epochs=30, spe=spe)
    assert run_diagnose(rows[:n_evals], losses[: n_evals * spe], spe=spe) == []


def test_degenerate_inputs_do_not_crash():
    rows = [dict(step=1, epoch=1, lr=0.1, train_loss=2.0, train_acc=math.nan, val_loss=2.1, val_acc=None)]
    assert run_diagnose(rows, [], val_size=0, initial_loss=math.nan) == []
    assert run_diagnose([], np.full(200, 1.0), spe=0) == []


def test_findings_serialize_and_format_one_line_each():
    assert format_findings([]) == "healthy: no problems found in the curves"
    findings = [Finding("diverged", "training loss became nan at step 3.", "Lower the learning rate.", 3),
                Finding("periodic", "the loss repeats.", "Shuffle.")]
    lines = format_findings(findings).splitlines()
    assert len(lines) == 2 and lines[0].startswith("diverged:") and lines[1].startswith("periodic:")
    assert json.loads(json.dumps(findings[0].to_dict())) == {
        "kind": "diverged", "message": "training loss became nan at step 3.", "advice": "Lower the learning rate.",
        "step": 3}
