"""Learning-rate schedules: closed-form traces, torch equivalence, warmup, plateau state, tiny runs."""
import io
import math
import pickle

import pytest
import torch
from torch import nn

from conftest import compose_cfg, run_tiny
from trainlab.config import validate
from trainlab.errors import ConfigError
from trainlab.optim.optimizers import OPTIMIZERS, build_optimizer
from trainlab.optim.schedules import SCHEDULES, build_schedule

BASE = 0.5  # base learning rate of every trace


@pytest.fixture(autouse=True)
def _skip_curve_plots(monkeypatch):
    """These runs check an option's effect; the curves figure (most of a tiny run's time) is tested elsewhere."""
    monkeypatch.setattr("trainlab.engine.run.draw_run_figures", lambda *args, **kwargs: None, raising=False)


def make(name, steps_per_epoch=1, total_steps=100, **settings):
    """A fresh SGD optimizer on a tiny model and the named schedule driving it."""
    optimizer_cfg = OPTIMIZERS["sgd"].schema(lr=BASE)
    optimizer = build_optimizer(optimizer_cfg, nn.Linear(2, 2), batch_size=32)
    schedule = build_schedule(SCHEDULES[name].schema(**settings), optimizer_cfg, optimizer, steps_per_epoch,
                              total_steps)
    return optimizer, schedule


def advance(optimizer, schedule, steps):
    """Take `steps` optimizer steps; return the lr each of them ran at."""
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return lrs


def trace(name, steps, steps_per_epoch=1, total_steps=None, **settings):
    optimizer, schedule = make(name, steps_per_epoch, total_steps or steps, **settings)
    return advance(optimizer, schedule, steps)


def torch_trace(make_scheduler, steps):
    optimizer = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=BASE)
    scheduler = make_scheduler(optimizer)
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def onecycle_reference(step, total, pct=0.3, div=25.0, final_div=1e4):
    """OneCycleLR's two-phase cosine, written out."""
    peak = pct * total - 1
    start, end = BASE / div, BASE / (div * final_div)

    def cos_between(a, b, fraction):
        return b + (a - b) / 2 * (math.cos(math.pi * fraction) + 1)

    if step <= peak:
        return cos_between(start, BASE, step / peak)
    return cos_between(BASE, end, (step - peak) / (total - 1 - peak))


# name, settings, steps per epoch, total steps, closed form lr(step)
CLOSED_FORMS = [
    ("constant", {}, 1, 30, lambda s: BASE),
    ("step", {"unit": "steps", "step_size": 7, "gamma": 0.5}, 1, 30, lambda s: BASE * 0.5 ** (s // 7)),
    ("step", {"unit": "epochs", "step_size": 2, "gamma": 0.1}, 5, 30, lambda s: BASE * 0.1 ** (s // 10)),
    ("multistep", {"unit": "epochs", "milestones": [2, 5], "gamma": 0.1}, 4, 30,
     lambda s: BASE * 0.1 ** ((s >= 8) + (s >= 20))),
    ("exponential", {"unit": "epochs", "k": 0.3}, 10, 60, lambda s: BASE * math.exp(-0.3 * s / 10)),
    ("inverse_time", {"unit": "steps", "k": 0.25}, 1, 40, lambda s: BASE / (1 + 0.25 * s)),
    ("cosine", {"min_factor": 0.1}, 4, 40,
     lambda s: BASE * (0.1 + 0.9 * (1 + math.cos(math.pi * s / 40)) / 2)),
    ("cyclic", {"unit": "steps", "base_factor": 0.2, "cycle_length": 10}, 1, 40,
     lambda s: BASE * (0.2 + 0.8 * (1 - abs((s % 10) / 5 - 1)))),
    ("onecycle", {}, 5, 50, lambda s: onecycle_reference(s, 50)),
]


@pytest.mark.parametrize("name,settings,per_epoch,total,formula", CLOSED_FORMS,
                         ids=[f"{c[0]}-{c[1].get('unit', 'epochs')}" for c in CLOSED_FORMS])
def test_lr_trace_matches_closed_form(name, settings, per_epoch, total, formula):
    optimizer, schedule = make(name, per_epoch, total, **settings)
    lrs = advance(optimizer, schedule, total)
    for step in range(total):
        assert lrs[step] == pytest.approx(formula(step), rel=1e-9, abs=1e-12), f"step {step}"
        assert schedule.factor(step) == pytest.approx(formula(step) / BASE, rel=1e-9, abs=1e-12)
    assert len(set(lrs)) > 1 or name == "constant"  # the schedule really moves the lr


def test_cosine_ends_at_min_factor():
    optimizer, schedule = make("cosine", 3, 30, min_factor=0.05)
    advance(optimizer, schedule, 30)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.05 * BASE)


TORCH_EQUIVALENTS = [
    ("step", {"unit": "steps", "step_size": 6, "gamma": 0.3},
     lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=6, gamma=0.3)),
    ("multistep", {"unit": "steps", "milestones": [5, 12, 13], "gamma": 0.5},
     lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[5, 12, 13], gamma=0.5)),
    ("exponential", {"unit": "steps", "k": 0.1},
     lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=math.exp(-0.1))),
    ("cosine", {"min_factor": 0.2},
     lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=30, eta_min=0.2 * BASE)),
    ("cyclic", {"unit": "steps", "base_factor": 0.1, "cycle_length": 8},
     lambda o: torch.optim.lr_scheduler.CyclicLR(o, base_lr=0.1 * BASE, max_lr=BASE, step_size_up=4,
                                                 cycle_momentum=False)),
    ("onecycle", {"pct_start": 0.25, "div_factor": 10.0, "final_div_factor": 100.0},
     lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=BASE, total_steps=30, pct_start=0.25, div_factor=10.0,
                                                   final_div_factor=100.0, cycle_momentum=False)),
    ("onecycle", {"anneal": "linear"},
     lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=BASE, total_steps=30, anneal_strategy="linear",
                                                   cycle_momentum=False)),
]


@pytest.mark.parametrize("name,settings,reference", TORCH_EQUIVALENTS,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(TORCH_EQUIVALENTS)])
def test_matches_torch_scheduler(name, settings, reference):
    ours = trace(name, 30, steps_per_epoch=3, **settings)
    assert ours == pytest.approx(torch_trace(reference, 30), rel=1e-6)


@pytest.mark.parametrize("mode,start", [("linear", 0.1), ("constant", 0.25)])
def test_warmup_multiplies_the_schedule(mode, start):
    settings = {"unit": "epochs", "step_size": 1, "gamma": 0.5, "warmup": 2, "warmup_mode": mode,
                "warmup_start": start}
    lrs = trace("step", 40, steps_per_epoch=5, **settings)
    for step, lr in enumerate(lrs):
        shape = BASE * 0.5 ** (step // 5)
        ramp = (start + (1 - start) * step / 10 if mode == "linear" else start) if step < 10 else 1.0
        assert lr == pytest.approx(ramp * shape), f"step {step}"
    assert lrs[0] == pytest.approx(start * BASE)


def test_epochs_and_steps_units_agree():
    in_epochs = trace("exponential", 50, steps_per_epoch=10, unit="epochs", k=0.5, warmup=1)
    in_steps = trace("exponential", 50, steps_per_epoch=10, unit="steps", k=0.05, warmup=10)
    assert in_epochs == pytest.approx(in_steps)


# -- plateau ----------------------------------------------------------------------------------------
def row(step, val_loss=1.0, val_acc=0.5):
    return {"step": step, "epoch": step, "lr": 0.0, "train_loss": 1.0, "train_acc": 0.5,
            "val_loss": val_loss, "val_acc": val_acc}


def lrs_after_evals(schedule, optimizer, values, key="val_loss", steps_between=3):
    lrs = []
    for value in values:
        advance(optimizer, schedule, steps_between)
        schedule.on_eval(row(schedule.steps, **{key: value}))
        lrs.append(optimizer.param_groups[0]["lr"])
    return lrs


def test_plateau_reduces_after_patience_non_improving_evals():
    optimizer, schedule = make("plateau", patience=2, factor=0.1)
    lrs = lrs_after_evals(schedule, optimizer, [1.0, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8])
    # 0.8 improves; then 2 non-improving evaluations are tolerated and the 3rd reduces
    assert lrs == pytest.approx([BASE, BASE, BASE, BASE, BASE * 0.1, BASE * 0.1, BASE * 0.1, BASE * 0.01])
    assert advance(optimizer, schedule, 2) == pytest.approx([BASE * 0.01] * 2)  # stays reduced between evals


def test_plateau_threshold_and_monitor_direction():
    optimizer, schedule = make("plateau", monitor="val_acc", patience=0, threshold=0.05, threshold_mode="abs")
    lrs = lrs_after_evals(schedule, optimizer, [0.5, 0.6, 0.62], key="val_acc")
    assert lrs == pytest.approx([BASE, BASE, BASE * 0.1])  # +0.02 is below the threshold
    optimizer, schedule = make("plateau", monitor="val_acc", patience=0)
    assert lrs_after_evals(schedule, optimizer, [0.1, 0.2, 0.3, 0.4], key="val_acc") == pytest.approx([BASE] * 4)


def test_plateau_respects_min_lr_and_cooldown():
    optimizer, schedule = make("plateau", patience=0, factor=0.5, min_lr=0.3 * BASE, cooldown=1)
    lrs = lrs_after_evals(schedule, optimizer, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    # reduce, one evaluation of cooldown, reduce to the floor, then never below it
    assert lrs == pytest.approx([BASE, 0.5 * BASE, 0.5 * BASE, 0.3 * BASE, 0.3 * BASE, 0.3 * BASE])


def test_warmup_composes_with_plateau():
    optimizer, schedule = make("plateau", unit="steps", warmup=10, warmup_start=0.1, patience=0, factor=0.5)
    lrs_after_evals(schedule, optimizer, [1.0, 1.0], steps_between=2)  # reduced once, at step 4
    lrs = advance(optimizer, schedule, 8)
    for step, lr in zip(range(4, 12), lrs):
        ramp = 0.1 + 0.9 * step / 10 if step < 10 else 1.0
        assert lr == pytest.approx(BASE * 0.5 * ramp), f"step {step}"


def test_plateau_state_survives_a_checkpoint():
    losses = [1.0, 0.9, 0.95, 0.92, 0.91, 0.93, 0.94, 0.96, 0.8, 0.85, 0.86, 0.87]
    settings = {"patience": 1, "factor": 0.5, "cooldown": 1, "threshold": 0.05, "warmup": 2, "unit": "steps"}
    optimizer, uninterrupted = make("plateau", **settings)
    expected = lrs_after_evals(uninterrupted, optimizer, losses)

    optimizer, first = make("plateau", **settings)
    before = lrs_after_evals(first, optimizer, losses[:5])
    buffer = io.BytesIO()
    torch.save({"schedule": first.state_dict(), "optimizer": optimizer.state_dict()}, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)  # plain data only

    optimizer, resumed = make("plateau", **settings)
    optimizer.load_state_dict(state["optimizer"])
    resumed.load_state_dict(state["schedule"])
    assert resumed.factor.bad_evals == first.factor.bad_evals and resumed.factor.best == first.factor.best
    assert before + lrs_after_evals(resumed, optimizer, losses[5:]) == pytest.approx(expected)
    assert expected[-1] < expected[0]  # the sequence really reduced the lr


@pytest.mark.parametrize("name", SCHEDULES.names())
def test_every_schedule_checkpoints_as_plain_data(name):
    settings = {"warmup": 1, "unit": "steps"}
    optimizer, schedule = make(name, 2, 20, **settings)
    advance(optimizer, schedule, 7)
    buffer = io.BytesIO()
    torch.save(schedule.state_dict(), buffer)
    buffer.seek(0)
    optimizer2, restored = make(name, 2, 20, **settings)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    assert restored.steps == 7
    assert advance(optimizer2, restored, 5) == pytest.approx(advance(optimizer, schedule, 5))
    assert pickle.loads(pickle.dumps(schedule.factor))(9) == schedule.factor(9)  # a plain picklable callable


def test_bad_values_are_config_errors():
    with pytest.raises(ConfigError, match="schedule.milestones"):
        validate(compose_cfg(["schedule=multistep", "schedule.milestones=[5,2]"]))
    with pytest.raises(ConfigError, match="schedule.unit"):
        validate(compose_cfg(["schedule=cosine", "schedule.unit=minutes"]))
    with pytest.raises(ConfigError, match="schedule.monitor"):
        validate(compose_cfg(["schedule=plateau", "schedule.monitor=train_loss"]))


# -- every option in a tiny run ------------------------------------------------------------------------
# lengths in steps so that each schedule moves the lr within a 2-epoch run of a few steps per epoch
IN_RUN = {
    "step": ["schedule.unit=steps", "schedule.step_size=2", "schedule.gamma=0.5"],
    "multistep": ["schedule.unit=steps", "schedule.milestones=[2,4]"],
    "exponential": ["schedule.unit=steps", "schedule.k=0.2"],
    "inverse_time": ["schedule.unit=steps", "schedule.k=0.5"],
    "cosine": ["schedule.min_factor=0.1"],
    "cyclic": ["schedule.unit=steps", "schedule.cycle_length=5"],
    "constant": ["schedule.unit=steps", "schedule.warmup=2"],
    # an improvement must beat 1.0 accuracy: the 2nd evaluation stalls and halves the lr for epoch 3
    "plateau": ["schedule.monitor=val_acc", "schedule.patience=0", "schedule.threshold=1.0",
                "schedule.threshold_mode=abs", "schedule.factor=0.5"],
}


@pytest.mark.parametrize("name", SCHEDULES.names())
def test_every_schedule_trains(tmp_path, name):
    epochs = 3 if name == "plateau" else 2
    overrides = [f"schedule={name}", f"trainer.epochs={epochs}", "optimizer=sgd", "optimizer.lr=0.05",
                 *IN_RUN.get(name, [])]
    summary = run_tiny(tmp_path, overrides)
    assert summary["status"] == "completed", summary
    final = summary["final"]
    assert math.isfinite(final["train_loss"]) and math.isfinite(final["val_loss"])
    if name == "plateau":
        assert final["lr"] == pytest.approx(0.025)  # epoch 3 trained at the rate halved by evaluation 2
        return
    spec = validate(compose_cfg(overrides))
    steps, per_epoch = summary["steps"], summary["steps"] // epochs
    factor = SCHEDULES[name].build(spec.schedule, per_epoch, steps)
    assert final["lr"] == pytest.approx(0.05 * factor(steps - 1))  # the lr the epoch's last step trained at
    if name != "constant":
        assert final["lr"] != pytest.approx(0.05)
