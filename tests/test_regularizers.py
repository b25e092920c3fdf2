"""Regularizers: penalty values by hand, weights-only by default, post-step constraints, tiny runs."""
import math

import pytest
import torch
from torch import nn

from conftest import compose_cfg, run_tiny
from trainlab.config import validate
from trainlab.engine.assemble import assemble
from trainlab.engine.checkpoint import load
from trainlab.engine.loop import Loop
from trainlab.errors import ConfigError
from trainlab.optim.regularizers import (REGULARIZERS, build_constraints, build_penalties, dropout_probability,
                                         penalized_weights)


@pytest.fixture(autouse=True)
def _skip_curve_plots(monkeypatch):
    """These runs check an option's effect; the curves figure (most of a tiny run's time) is tested elsewhere."""
    monkeypatch.setattr("trainlab.engine.run.draw_run_figures", lambda *args, **kwargs: None, raising=False)


def selected(**options):
    """{name: schema} as validation produces it, from keyword settings per option."""
    return {name: REGULARIZERS[name].schema(**settings) for name, settings in options.items()}


def known_model():
    """Weights [[1, -2], [3, 0]] (sum w^2 = 14, sum |w| = 6) and bias [0.5, -1] (sum b^2 = 1.25, sum |b| = 1.5)."""
    model = nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -2.0], [3.0, 0.0]]))
        model.bias.copy_(torch.tensor([0.5, -1.0]))
    return model


@pytest.mark.parametrize("name,settings,weights_only,everything", [
    ("l2", {"strength": 0.1}, 0.1 * 14, 0.1 * (14 + 1.25)),
    ("l1", {"strength": 0.1}, 0.1 * 6, 0.1 * (6 + 1.5)),
    ("elastic_net", {"strength": 0.1, "beta": 0.5}, 0.1 * (0.5 * 14 + 6), 0.1 * (0.5 * (14 + 1.25) + 6 + 1.5)),
])
def test_penalty_values_by_hand(name, settings, weights_only, everything):
    model = known_model()
    weights = penalized_weights(model)
    assert weights == [model.weight]  # biases are not penalized by default
    [penalty] = build_penalties(selected(**{name: settings}), model)
    assert penalty(weights).item() == pytest.approx(weights_only)
    [penalty_all] = build_penalties(selected(**{name: {**settings, "apply_to": "all"}}), model)
    assert penalty_all(weights).item() == pytest.approx(everything)


def test_penalty_gradient_reaches_the_weights_only():
    model = known_model()
    [penalty] = build_penalties(selected(l2={"strength": 0.5}), model)
    penalty(penalized_weights(model)).backward()
    torch.testing.assert_close(model.weight.grad, 2 * 0.5 * model.weight.detach())  # d/dw lambda w^2 = 2 lambda w
    assert model.bias.grad is None


def test_apply_to_all_needs_the_model():
    with pytest.raises(ValueError, match="model"):
        build_penalties(selected(l1={"apply_to": "all"}))


def test_kinds_are_sorted_out():
    options = selected(l2={}, dropout={"p": 0.3}, maxnorm={}, weight_decay={})
    assert len(build_penalties(options)) == 1
    assert len(build_constraints(options)) == 2
    assert dropout_probability(options) == 0.3
    assert dropout_probability(selected(l2={})) == 0.0
    assert build_penalties({}) == [] and build_constraints({}) == []


def test_maxnorm_projects_each_neuron_onto_the_ball():
    torch.manual_seed(0)
    linear, conv = nn.Linear(6, 5), nn.Conv2d(2, 4, 3)
    with torch.no_grad():
        linear.weight.mul_(10)
        linear.weight[0] = 0.01   # a neuron already inside the ball
        conv.weight.mul_(10)
    weights = [linear.weight, conv.weight]
    inside = linear.weight[0].detach().clone()
    [maxnorm] = build_constraints(selected(maxnorm={"max_norm": 1.5}))
    maxnorm(weights, lr=0.1)
    rows = linear.weight.detach().norm(dim=1)
    filters = conv.weight.detach().flatten(1).norm(dim=1)
    assert (rows <= 1.5 + 1e-5).all() and (filters <= 1.5 + 1e-5).all()
    assert rows[1:].tolist() == pytest.approx([1.5] * 4, rel=1e-5)  # the long ones land on the boundary
    assert torch.equal(linear.weight[0], inside)


def test_decoupled_weight_decay_shrinks_by_exactly_one_minus_lr_lambda():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2)
    [decay] = build_constraints(selected(weight_decay={"strength": 0.5}))
    before = [p.detach().clone() for p in model.parameters()]
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    decay(penalized_weights(model), optimizer.param_groups[0]["lr"])
    for old, new in zip(before, model.parameters()):
        expected = old * (1 - 0.2 * 0.5) if old.dim() > 1 else old  # biases untouched
        torch.testing.assert_close(new.detach(), expected, rtol=0, atol=0)


def first_step_losses(overrides):
    """Data loss and penalty of a fresh model on its first batch, through the engine."""
    spec = validate(compose_cfg(["dataset.subset=120", *overrides]))
    c = assemble(spec, torch.device("cpu"))
    loop = Loop(c, spec.trainer, torch.device("cpu"))
    x, y = c.preprocess(c.splits.train.x[:32].float()), c.splits.train.y[:32]
    with torch.no_grad():
        return c.loss_fn(c.model(x), y).item(), loop.penalty().item()


def test_switching_a_penalty_on_raises_the_initial_total_loss():
    data_off, penalty_off = first_step_losses(["regularizer=none"])
    data_on, penalty_on = first_step_losses(["regularizer=l2", "regularizer.l2.strength=0.01"])
    assert penalty_off == 0.0 and data_on == pytest.approx(data_off)  # same seed, same model
    assert data_on + penalty_on > data_off + penalty_off


def test_options_combine():
    spec = validate(compose_cfg(["regularizer=[l2,dropout,maxnorm]", "regularizer.dropout.p=0.2"]))
    assert sorted(spec.regularizer) == ["dropout", "l2", "maxnorm"]
    assert spec.regularizer["dropout"].p == 0.2 and spec.regularizer["l2"].strength == 1e-4


@pytest.mark.parametrize("overrides,key", [
    (["regularizer=l1", "regularizer.l1.strength=-1"], "regularizer.l1.strength"),
    (["regularizer=l2", "regularizer.l2.apply_to=biases"], "regularizer.l2.apply_to"),
    (["regularizer=elastic_net", "regularizer.elastic_net.beta=-0.5"], "regularizer.elastic_net.beta"),
    (["regularizer=maxnorm", "regularizer.maxnorm.max_norm=0"], "regularizer.maxnorm.max_norm"),
    (["regularizer=dropout", "regularizer.dropout.p=1.0"], "regularizer.dropout.p"),
    (["regularizer=dropout", "regularizer.dropout.input_p=-0.1"], "regularizer.dropout.input_p"),
    (["regularizer=dropout", "regularizer.dropout.input_p=0.2", "arch=resnet"], "regularizer.dropout.input_p"),
])
def test_bad_values_are_config_errors(overrides, key):
    with pytest.raises(ConfigError) as err:
        validate(compose_cfg(overrides))
    assert err.value.key == key


def test_input_dropout_zeroes_pixels_before_the_first_layer_in_training_only():
    from trainlab.nn import build_model

    for arch in ("mlp", "cnn"):
        spec = validate(compose_cfg([f"arch={arch}", "regularizer=dropout", "regularizer.dropout.p=0.0",
                                     "regularizer.dropout.input_p=0.5", "dataset=digits"]))
        model = build_model(spec, (1, 8, 8), 10)
        first = next(m for m in model if isinstance(m, (nn.Dropout, nn.Linear, nn.Conv2d)))
        assert isinstance(first, nn.Dropout) and first.p == 0.5, arch
        x = torch.ones(4, 1, 8, 8)
        assert (first(x) == 0).any() and set(first(x).unique().tolist()) <= {0.0, 2.0}
        model.eval()
        assert torch.equal(model(x), model(x))  # no dropout in eval mode
    plain = build_model(validate(compose_cfg(["regularizer=dropout", "dataset=digits"])), (64,), 10)
    assert not isinstance(plain[1], nn.Dropout)  # input_p defaults to 0: the layout is unchanged


# -- every option in a tiny run ------------------------------------------------------------------------
PENALTIES = {"l2", "l1", "elastic_net"}
IN_RUN = {"maxnorm": ["regularizer.maxnorm.max_norm=0.5"], "l1": ["regularizer.l1.strength=1e-3"],
          "stochastic_depth": ["arch=resnet", "arch.depth=8", "arch.width=4"]}  # needs residual blocks


@pytest.mark.parametrize("name", REGULARIZERS.names() + ["none"])
def test_every_regularizer_trains(tmp_path, name):
    summary = run_tiny(tmp_path, [f"regularizer={name}", "optimizer=sgd", *IN_RUN.get(name, [])])
    assert summary["status"] == "completed", summary
    final = summary["final"]
    assert math.isfinite(final["train_loss"]) and math.isfinite(final["val_loss"])
    if name in PENALTIES:
        assert final["train_penalty"] > 0  # reported apart from the data loss
    else:
        assert final["train_penalty"] == 0
    if name == "maxnorm":
        weights = [w for w in load(tmp_path / "checkpoints" / "last.pt")["model"].values() if w.dim() > 1]
        assert all((w.flatten(1).norm(dim=1) <= 0.5 + 1e-5).all() for w in weights)
