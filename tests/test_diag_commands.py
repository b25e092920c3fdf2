"""`trainlab inspect`, `trainlab gradcheck` and `trainlab lr-find` on configured networks."""
import json

import pytest
import torch
from torch import nn

from trainlab.app.cli import main
from trainlab.app.diagnose_setup import load_spec
from trainlab.app.diagnose_commands import assess, gradcheck_network, inspect_network, lr_find_network

# The classic initialization study: 10 hidden layers of 500 units, unit-Gaussian input.
DEEP = ["arch=mlp", "arch.depth=10", "arch.width=500"]


def study(*overrides):
    return inspect_network(load_spec([*DEEP, *overrides]), gaussian=True, batch=128)


def stds(stats):
    return [s.std for s in stats]


def test_tiny_normal_weights_make_tanh_activations_shrink_layer_by_layer():
    stats = study("activation=tanh", "init=normal", "init.std=0.01")
    assert [s.kind for s in stats] == ["Tanh"] * 10
    # each layer multiplies the spread by about 0.01 * sqrt(500) = 0.22
    assert all(0.15 < later / earlier < 0.3 for earlier, later in zip(stds(stats), stds(stats)[1:]))
    assert stats[-1].std < 1e-5
    grads = [s.grad_std for s in stats]
    assert grads[0] < 1e-4 * grads[-1]  # and the gradients vanish towards the input
    assert assess(stats)[0].startswith("activations shrink with depth")


def test_unit_normal_weights_saturate_tanh():
    stats = study("activation=tanh", "init=normal", "init.std=1.0")
    assert all(s.frac_saturated > 0.7 for s in stats)
    assert all(s.std > 0.9 for s in stats)
    assert "10/10 layers mostly saturated" in assess(stats)[0]


def test_xavier_keeps_tanh_healthy():
    stats = study("activation=tanh", "init=xavier")
    assert all(0.3 < s.std < 0.9 for s in stats)
    assert 0.7 < stats[-1].std / stats[0].std < 1.5
    # the first layer takes 500 unit-Gaussian inputs times tanh's gain 5/3: ~11% saturated, then it settles
    assert stats[0].frac_saturated < 0.15 and all(s.frac_saturated < 0.05 for s in stats[1:])
    assert assess(stats) == []


def test_relu_shrinks_with_glorot_xavier_but_holds_with_kaiming():
    # Glorot's original scaling (gain 1): ReLU halves the variance at every layer.
    xavier = study("activation=relu", "init=xavier", "init.gain=1.0")
    assert all(later < 0.85 * earlier for earlier, later in zip(stds(xavier), stds(xavier)[1:]))
    assert xavier[-1].std / xavier[0].std < 0.1
    kaiming = study("activation=relu", "init=kaiming")
    assert 0.7 < kaiming[-1].std / kaiming[0].std < 1.3
    assert all(s.frac_dead_units < 0.2 for s in kaiming)  # a few units die in deep layers, not most
    assert assess(kaiming) == []


def test_inspect_command_on_real_data_writes_histograms(tmp_path, capsys):
    assert main(["inspect", "activation=tanh", "init=xavier", "--batch", "64", "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "inspect.json").read_text())
    assert not record["gaussian"]
    assert [layer["name"] for layer in record["layers"]] == ["2", "4"]  # Flatten, Linear, Tanh, Linear, Tanh, head
    assert all(layer["shape"] == [64, 256] and layer["grad_std"] > 0 for layer in record["layers"])
    assert (tmp_path / "activations.png").read_bytes()[:4] == b"\x89PNG"
    assert "steady spread" in capsys.readouterr().out


def test_inspect_finds_the_configured_activation_when_it_is_not_a_known_module():
    stats = inspect_network(load_spec(["activation=swish", "arch.width=32"]), batch=32)
    assert [(s.name, s.kind, s.shape) for s in stats] == [("2", "Swish", (32, 32)), ("4", "Swish", (32, 32))]


# -- gradcheck -----------------------------------------------------------------------------------
SMALL = ["arch.width=12", "dataset.subset=100"]


@pytest.mark.parametrize("overrides", [
    ["activation=maxout"],
    ["activation=swish", "activation.learnable=true"],
    ["activation=prelu"],
    ["loss=hinge"],
    ["activation=tanh", "norm=batchnorm"],
])
def test_configured_gradients_pass(overrides):
    report = gradcheck_network(load_spec([*SMALL, *overrides]))
    assert report.passed, report.render()
    scored = [t.worst_rel_error for t in report.tensors if t.worst_rel_error is not None]
    assert len(scored) >= len(report.tensors) - 1 and max(scored) < 1e-4


def test_learnable_swish_beta_is_checked_and_smooth_models_get_the_strict_tolerance():
    report = gradcheck_network(load_spec([*SMALL, "activation=swish", "activation.learnable=true"]))
    assert [t.name for t in report.tensors if t.name.endswith("beta")] == ["2.beta", "4.beta"]
    assert not report.has_kinks and report.tolerance == 1e-4
    assert all(t.band == "excellent" for t in report.tensors)


def test_kinked_activations_and_hinge_loss_get_the_kink_tolerance():
    assert gradcheck_network(load_spec([*SMALL, "activation=prelu"])).has_kinks
    hinge = gradcheck_network(load_spec([*SMALL, "activation=tanh", "loss=hinge"]))
    assert hinge.has_kinks and any("MulticlassHinge" in s for s in hinge.kink_sources)


class TanhWithWrongBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        out = torch.tanh(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        (out,) = ctx.saved_tensors
        return grad_out * (1 - out)  # should be 1 - out**2


class PlantedTanh(nn.Module):
    def forward(self, x):
        return TanhWithWrongBackward.apply(x)


def test_a_wrong_backward_is_caught_with_exit_1(monkeypatch, tmp_path, capsys):
    from trainlab.nn.activations import ACTIVATIONS, Activation

    monkeypatch.setitem(ACTIVATIONS._builders, "tanh", lambda cfg: Activation(lambda width: PlantedTanh(), "tanh"))
    assert main(["gradcheck", *SMALL, "activation=tanh", "--out", str(tmp_path)]) == 1
    record = json.loads((tmp_path / "gradcheck.json").read_text())
    bands = {t["name"]: t["band"] for t in record["tensors"]}
    assert not record["passed"]
    assert bands["1.weight"] == "wrong" and bands["5.weight"] == "excellent"  # the head is before the bug
    assert "FAILED: wrong gradient in 1.weight (wrong)" in capsys.readouterr().out


# -- lr-find -------------------------------------------------------------------------------------
def test_lr_find_suggests_a_learning_rate_for_the_configured_optimizer(tmp_path):
    assert main(["lr-find", "--steps", "80", "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "lr_find.json").read_text())
    assert record["optimizer"] == "adam"
    assert 1e-7 <= record["lrs"][0] < record["suggested_lr"] < record["lrs"][-1] <= 10
    assert 1e-4 < record["suggested_lr"] < 1e-1  # Adam on standardized digits
    assert record["stopped_early"]  # the sweep runs into the explosion
    assert (tmp_path / "lr_find.png").stat().st_size > 10_000


def test_lr_find_sweeps_the_configured_optimizer_kind():
    adam = lr_find_network(load_spec(["optimizer=adam"]), steps=80)
    sgd = lr_find_network(load_spec(["optimizer=sgd"]), steps=80)
    # plain SGD takes steps of lr * gradient, Adam of about lr: SGD needs a far larger lr
    assert sgd.suggested_lr > 10 * adam.suggested_lr


def test_lr_find_rejects_an_empty_range(capsys):
    assert main(["lr-find", "--lr-min", "1", "--lr-max", "0.1"]) == 2
    assert "--lr-min=1.0 is not valid: below --lr-max (0.1)" in capsys.readouterr().err


def test_gaussian_input_is_as_wide_as_the_first_hidden_layer():
    """The classic study feeds 500 Gaussian units into 500: layer 1's tanh std is ~0.21
    (tanh of N(0, 0.01² · 500)); with the digits' 64 inputs it would be ~0.08."""
    spec = load_spec([*DEEP, "activation=tanh", "init=normal", "init.std=0.01"])
    wide = inspect_network(spec, gaussian=True, batch=1000)
    assert 0.19 < wide[0].std < 0.23
    narrow = inspect_network(spec, gaussian=True, batch=1000, width="data")
    assert 0.06 < narrow[0].std < 0.1
