"""Optimizers: each option builds the right torch optimizer and trains; common keys (lr scaling,
gradient clipping, decay groups) and the momentum warmup do what they say."""
import math

import pytest
import torch
from torch import nn

from conftest import compose_cfg, run_tiny
from trainlab.config import validate
from trainlab.engine.assemble import assemble
from trainlab.engine.loop import Loop
from trainlab.errors import ConfigError
from trainlab.optim.optimizers import OPTIMIZERS, build_optimizer, gradient_clipper, param_groups
from trainlab.optim.schedules import SCHEDULES, build_schedule


@pytest.fixture(autouse=True)
def _skip_curve_plots(monkeypatch):
    """These runs check an option's effect; the curves figure (most of a tiny run's time) is tested elsewhere."""
    monkeypatch.setattr("trainlab.engine.run.draw_run_figures", lambda *args, **kwargs: None, raising=False)


def spec_of(overrides):
    return validate(compose_cfg(overrides))


def small_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


def total_grad_norm(params):
    return torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params if p.grad is not None])).item()


# -- each option -------------------------------------------------------------------------------------
# option -> the torch class it builds and settings its YAML must produce
BUILDS = {
    "sgd": (torch.optim.SGD, {"momentum": 0, "nesterov": False}),
    "momentum": (torch.optim.SGD, {"momentum": 0.9, "nesterov": False}),
    "nesterov": (torch.optim.SGD, {"momentum": 0.9, "nesterov": True, "dampening": 0}),
    "adagrad": (torch.optim.Adagrad, {"lr_decay": 0.0}),
    "rmsprop": (torch.optim.RMSprop, {"alpha": 0.99, "centered": False}),
    "adam": (torch.optim.Adam, {"betas": (0.9, 0.999), "amsgrad": False}),
    "adamw": (torch.optim.AdamW, {"betas": (0.9, 0.999)}),
    "adadelta": (torch.optim.Adadelta, {"rho": 0.9}),
    "lbfgs": (torch.optim.LBFGS, {"line_search_fn": "strong_wolfe", "max_iter": 20, "history_size": 100}),
}


def test_every_option_is_covered():
    assert sorted(BUILDS) == OPTIMIZERS.names()


@pytest.mark.parametrize("name", sorted(BUILDS))
def test_yaml_builds_the_torch_optimizer(name):
    cfg = spec_of([f"optimizer={name}"]).optimizer
    optimizer = build_optimizer(cfg, small_model(), batch_size=32)
    cls, settings = BUILDS[name]
    assert type(optimizer) is cls
    group = optimizer.param_groups[0]
    assert group["lr"] == cfg.lr
    assert {k: group[k] for k in settings} == settings


@pytest.mark.parametrize("name", sorted(BUILDS))
def test_every_optimizer_trains(tmp_path, name):
    # L-BFGS re-evaluates one batch many times: give it the full batch, as its YAML advises
    extra = ["trainer.batch_size=2000", "trainer.epochs=2", "optimizer.max_iter=5"] if name == "lbfgs" else []
    summary = run_tiny(tmp_path, [f"optimizer={name}", *extra])
    assert summary["status"] == "completed", summary
    final = summary["final"]
    assert math.isfinite(final["train_loss"]) and math.isfinite(final["val_loss"])
    assert final["lr"] == spec_of([f"optimizer={name}"]).optimizer.lr  # constant schedule: the YAML's lr
    if name == "lbfgs":
        assert summary["steps"] == 2 and final["train_acc"] > 0.5  # two full-batch quasi-Newton steps suffice


def test_amsgrad_keeps_the_running_max():
    model = small_model()
    optimizer = build_optimizer(spec_of(["optimizer=adam", "optimizer.amsgrad=true"]).optimizer, model, 32)
    model(torch.randn(5, 4)).sum().backward()
    optimizer.step()
    assert optimizer.param_groups[0]["amsgrad"]
    assert "max_exp_avg_sq" in optimizer.state[model[0].weight]


def test_adamw_decay_is_decoupled_and_spares_biases():
    model = small_model()
    cfg = spec_of(["optimizer=adamw", "optimizer.lr=0.1", "optimizer.weight_decay=0.5"]).optimizer
    optimizer = build_optimizer(cfg, model, 32)
    before = [p.detach().clone() for p in model.parameters()]
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    for old, new in zip(before, model.parameters()):
        expected = old * (1 - 0.1 * 0.5) if old.dim() > 1 else old
        torch.testing.assert_close(new.detach(), expected)


# -- common keys -------------------------------------------------------------------------------------
def test_weights_decay_biases_and_norm_parameters_do_not():
    model = small_model()
    decay, rest = param_groups(model, 0.01)
    assert decay["weight_decay"] == 0.01 and rest["weight_decay"] == 0.0
    assert {id(p) for p in decay["params"]} == {id(model[0].weight), id(model[3].weight)}
    assert len(rest["params"]) == 4  # two biases, the norm's scale and shift


@pytest.mark.parametrize("enabled,batch,expected", [(True, 64, 0.1), (True, 1024, 1.6), (False, 64, 0.4)])
def test_linear_lr_scaling(enabled, batch, expected):
    cfg = spec_of(["optimizer=momentum", "optimizer.lr=0.4", f"optimizer.lr_scaling.enabled={enabled}",
                   "optimizer.lr_scaling.reference_batch=256"]).optimizer
    optimizer = build_optimizer(cfg, small_model(), batch_size=batch)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([expected, expected])
    schedule = build_schedule(SCHEDULES["cosine"].schema(), cfg, optimizer, 10, 100)
    assert schedule.lambda_lr.base_lrs == pytest.approx([expected, expected])  # schedules start from the scaled lr


def set_grads(params, value):
    for p in params:
        p.grad = torch.full_like(p, value)


def test_clip_norm_bounds_the_global_norm():
    model = small_model()
    params = list(model.parameters())
    clip = gradient_clipper(OPTIMIZERS["sgd"].schema(clip_norm=1.0))
    set_grads(params, 3.0)
    direction = torch.cat([p.grad.flatten() for p in params])
    clip(model.parameters())
    assert total_grad_norm(params) == pytest.approx(1.0, rel=1e-4)
    clipped = torch.cat([p.grad.flatten() for p in params])
    assert torch.allclose(clipped / clipped.norm(), direction / direction.norm())  # direction kept
    set_grads(params, 1e-3)
    clip(params)
    assert all(torch.equal(p.grad, torch.full_like(p, 1e-3)) for p in params)  # small gradients untouched


def test_clip_value_bounds_every_element():
    model = small_model()
    params = list(model.parameters())
    for p in params:
        p.grad = torch.linspace(-2, 2, p.numel()).reshape(p.shape)
    original = [p.grad.clone() for p in params]
    gradient_clipper(OPTIMIZERS["sgd"].schema(clip_value=0.5))(params)
    for p, g in zip(params, original):
        assert p.grad.abs().max() <= 0.5
        torch.testing.assert_close(p.grad, g.clamp(-0.5, 0.5))


def test_no_clipper_unless_configured():
    assert gradient_clipper(OPTIMIZERS["adam"].schema()) is None


def test_engine_clips_before_the_step():
    spec = spec_of(["optimizer=sgd", "optimizer.clip_norm=0.01", "dataset.subset=120", "trainer.batch_size=32"])
    components = assemble(spec, torch.device("cpu"))
    loop = Loop(components, spec.trainer, torch.device("cpu"))
    before = [p.detach().clone() for p in components.model.parameters()]
    x, y = components.splits.train.x[:32].float(), components.splits.train.y[:32]
    loop._step(components.preprocess(x), y)
    params = list(components.model.parameters())
    assert total_grad_norm(params) == pytest.approx(0.01, rel=1e-3)  # a fresh net's gradient is far larger
    moved = torch.linalg.vector_norm(torch.cat([(p.detach() - b).flatten() for p, b in zip(params, before)]))
    assert moved.item() == pytest.approx(spec.optimizer.lr * 0.01, rel=1e-3)  # plain sgd: step = lr * clipped grad


# -- momentum warmup ---------------------------------------------------------------------------------
def momentum_trace(name, steps, warmup_epochs, steps_per_epoch=5):
    cfg = OPTIMIZERS[name].schema(momentum=0.9, momentum_start=0.5, momentum_warmup_epochs=warmup_epochs)
    optimizer = build_optimizer(cfg, small_model(), 32)
    schedule = build_schedule(SCHEDULES["constant"].schema(), cfg, optimizer, steps_per_epoch, 100)
    values = []
    for _ in range(steps):
        values.append([g["momentum"] for g in optimizer.param_groups])
        optimizer.step()
        schedule.step()
    return values, optimizer, schedule


@pytest.mark.parametrize("name", ["momentum", "nesterov"])
def test_momentum_warmup_ramps_linearly(name):
    values, _, _ = momentum_trace(name, 15, warmup_epochs=2)
    for step, groups in enumerate(values):
        expected = 0.5 + 0.4 * step / 10 if step < 10 else 0.9
        assert groups == pytest.approx([expected] * 2), f"step {step}"


def test_momentum_constant_without_warmup_and_restored_from_the_step():
    values, _, _ = momentum_trace("momentum", 4, warmup_epochs=0)
    assert values == [[0.9, 0.9]] * 4
    _, _, schedule = momentum_trace("momentum", 3, warmup_epochs=2)
    _, fresh_optimizer, fresh = momentum_trace("momentum", 0, warmup_epochs=2)
    fresh.load_state_dict(schedule.state_dict())
    assert fresh_optimizer.param_groups[0]["momentum"] == pytest.approx(0.5 + 0.4 * 3 / 10)


def test_momentum_warmup_in_a_run(tmp_path):
    summary = run_tiny(tmp_path, ["optimizer=nesterov", "optimizer.momentum_warmup_epochs=1", "trainer.epochs=2"])
    assert summary["status"] == "completed" and math.isfinite(summary["final"]["train_loss"])


def test_common_keys_in_a_run(tmp_path):
    summary = run_tiny(tmp_path, ["optimizer=adam", "optimizer.lr=0.002", "optimizer.lr_scaling.enabled=true",
                                  "optimizer.lr_scaling.reference_batch=64", "optimizer.clip_norm=1.0",
                                  "optimizer.clip_value=0.5", "trainer.batch_size=32"])
    assert summary["status"] == "completed"
    assert summary["final"]["lr"] == pytest.approx(0.001)  # 0.002 * 32 / 64


# -- validation ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides,key", [
    (["optimizer=lbfgs", "optimizer.weight_decay=0.1"], "optimizer.weight_decay"),
    (["optimizer=lbfgs", "optimizer.line_search=armijo"], "optimizer.line_search"),
    (["optimizer=nesterov", "+optimizer.dampening=0.1"], "optimizer.dampening"),
    (["optimizer=momentum", "optimizer.momentum_start=1.5"], "optimizer.momentum_start"),
    (["optimizer=sgd", "optimizer.clip_norm=0"], "optimizer.clip_norm"),
    (["optimizer=adam", "optimizer.lr_scaling.reference_batch=0"], "optimizer.lr_scaling.reference_batch"),
    (["optimizer=sgd", "+optimizer.betas=[0.9,0.99]"], "optimizer.betas"),
])
def test_bad_values_are_config_errors(overrides, key):
    with pytest.raises(ConfigError) as err:
        spec_of(overrides)
    assert err.value.key == key
