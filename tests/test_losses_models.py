"""Losses against hand computations; architecture details: maxout, PReLU, norm placement, init gains."""
import math

import pytest
import torch
from torch import nn

from conftest import compose_cfg
from trainlab.config import validate
from trainlab.errors import ConfigError
from trainlab.nn import build_model
from trainlab.nn.activations import Maxout, Swish
from trainlab.optim.losses import CrossEntropy, MulticlassHinge
from trainlab.schemas.loss import CrossEntropySchema, HingeSchema


def test_cross_entropy_matches_hand_computation():
    scores = torch.tensor([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]])
    y = torch.tensor([0, 2])
    by_hand = []
    for s, t in zip(scores.tolist(), y.tolist()):
        log_z = math.log(sum(math.exp(v) for v in s))
        by_hand.append(log_z - s[t])
    assert CrossEntropy(CrossEntropySchema())(scores, y).item() == pytest.approx(sum(by_hand) / 2, rel=1e-6)
    smooth = CrossEntropy(CrossEntropySchema(label_smoothing=0.3))(scores, y).item()
    hand_smooth = 0.0
    for s, t in zip(scores.tolist(), y.tolist()):
        log_z = math.log(sum(math.exp(v) for v in s))
        logp = [v - log_z for v in s]
        target = [0.3 / 3 + (0.7 if c == t else 0.0) for c in range(3)]
        hand_smooth += -sum(q * lp for q, lp in zip(target, logp))
    assert smooth == pytest.approx(hand_smooth / 2, rel=1e-6)


def test_multiclass_hinge_matches_hand_computation():
    # the classic worked example: scores for 3 classes, true class first/second/third
    scores = torch.tensor([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])
    y = torch.tensor([0, 1, 2])
    per_example = [max(0, 5.1 - 3.2 + 1) + max(0, -1.7 - 3.2 + 1),
                   max(0, 1.3 - 4.9 + 1) + max(0, 2.0 - 4.9 + 1),
                   max(0, 2.2 + 3.1 + 1) + max(0, 2.5 + 3.1 + 1)]
    loss = MulticlassHinge(HingeSchema(margin=1.0))(scores, y).item()
    assert loss == pytest.approx(sum(per_example) / 3, rel=1e-6)  # (2.9 + 0 + 12.9) / 3
    squared = MulticlassHinge(HingeSchema(margin=1.0, squared=True))(scores, y).item()
    assert squared == pytest.approx(sum((max(0, v)) ** 2 for v in [1.9 + 1, -4.9 + 1, -3.6 + 1, -2.9 + 1, 5.3 + 1, 5.6 + 1]) / 3, rel=1e-6)
    # soft targets weight the per-class hinge
    soft = torch.tensor([[0.5, 0.5, 0.0]])
    mixed = MulticlassHinge(HingeSchema())(scores[:1], soft).item()
    one = [MulticlassHinge(HingeSchema())(scores[:1], torch.tensor([c])).item() for c in (0, 1)]
    assert mixed == pytest.approx(0.5 * one[0] + 0.5 * one[1])


def test_initial_losses_for_uniform_guessing():
    assert CrossEntropy(CrossEntropySchema()).initial_loss(10) == pytest.approx(math.log(10))
    assert MulticlassHinge(HingeSchema(margin=1.0)).initial_loss(10) == pytest.approx(9.0)
    zeros = torch.zeros(4, 10)
    y = torch.tensor([1, 2, 3, 4])
    assert MulticlassHinge(HingeSchema())(zeros, y).item() == pytest.approx(9.0)
    assert CrossEntropy(CrossEntropySchema())(zeros, y).item() == pytest.approx(math.log(10))


def model_for(overrides, input_shape=(1, 8, 8), classes=10):
    spec = validate(compose_cfg(overrides))
    return build_model(spec, input_shape, classes)


def test_maxout_widens_the_layer_before_it():
    model = model_for(["activation=maxout", "activation.pieces=3", "arch.width=[20,10]"])
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert [l.out_features for l in linears] == [60, 30, 10]
    assert [l.in_features for l in linears] == [64, 20, 10]
    assert sum(isinstance(m, Maxout) for m in model) == 2
    x = torch.tensor([[1.0, 5.0, 2.0, -1.0, -3.0, -2.0]])
    assert torch.equal(Maxout(3)(x), torch.tensor([[5.0, -1.0]]))
    cnn = model_for(["activation=maxout", "arch=cnn", "arch.channels=[4,8]"])
    convs = [m for m in cnn.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 16] and cnn(torch.rand(2, 1, 8, 8)).shape == (2, 10)


def test_prelu_and_swish_parameters_are_learnable_when_asked():
    model = model_for(["activation=prelu", "arch.width=[12]"])
    prelu = [m for m in model if isinstance(m, nn.PReLU)][0]
    assert prelu.weight.shape == (12,) and prelu.weight.requires_grad
    shared = model_for(["activation=prelu", "activation.per_channel=false", "arch.width=[12]"])
    assert [m for m in shared if isinstance(m, nn.PReLU)][0].weight.shape == (1,)
    swish = [m for m in model_for(["activation=swish", "activation.learnable=true", "arch.width=[12]"]) if isinstance(m, Swish)][0]
    assert any(p is swish.beta for p in swish.parameters())
    fixed = [m for m in model_for(["activation=swish", "arch.width=[12]"]) if isinstance(m, Swish)][0]
    assert not list(fixed.parameters())


@pytest.mark.parametrize("placement,order", [("before", [nn.Linear, nn.BatchNorm1d, nn.ReLU]),
                                             ("after", [nn.Linear, nn.ReLU, nn.BatchNorm1d])])
def test_norm_placement(placement, order):
    model = model_for(["norm=batchnorm", f"norm.placement={placement}", "arch.width=[16]"])
    kinds = [type(m) for m in model if not isinstance(m, nn.Flatten)][:3]
    assert kinds == order


@pytest.mark.parametrize("init,activation,expected_std", [
    ("kaiming", "relu", lambda fan_in, fan_out: math.sqrt(2 / fan_in)),
    ("xavier", "tanh", lambda fan_in, fan_out: 5 / 3 * math.sqrt(2 / (fan_in + fan_out))),
    ("lecun", "selu", lambda fan_in, fan_out: math.sqrt(1 / fan_in)),
    ("normal", "relu", lambda fan_in, fan_out: 0.01),
])
def test_init_uses_the_activation_gain(init, activation, expected_std):
    torch.manual_seed(0)
    model = model_for([f"init={init}", f"activation={activation}", "arch.width=[400,400]"], input_shape=(400,))
    hidden = [m for m in model if isinstance(m, nn.Linear)][1]  # 400 -> 400
    assert hidden.weight.std().item() == pytest.approx(expected_std(400, 400), rel=0.03)
    assert torch.all(hidden.bias == 0)


def test_init_bias_value_and_default_init():
    model = model_for(["init=kaiming", "init.bias=0.01", "arch.width=[8]"])
    assert all(torch.all(m.bias == 0.01) for m in model if isinstance(m, nn.Linear))
    zeros = model_for(["init=zeros", "arch.width=[8]"])
    assert all(torch.all(m.weight == 0) for m in zeros if isinstance(m, nn.Linear))


def test_resnet_depth_and_torchvision_adaptation():
    resnet = model_for(["arch=resnet", "arch.depth=14", "arch.width=4"], input_shape=(3, 16, 16))
    convs = [m for m in resnet.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs) == 13  # 6n + 1 convolutions (+ the classifier = 6n + 2 layers) for n = 2
    assert resnet(torch.rand(2, 3, 16, 16)).shape == (2, 10)
    tv = model_for(["arch=torchvision", "arch.model=resnet18", "activation=elu"], input_shape=(1, 28, 28))
    assert tv(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    assert not any(isinstance(m, nn.ReLU) for m in tv.modules()) and any(isinstance(m, nn.ELU) for m in tv.modules())


def test_torchvision_cifar_stem_keeps_full_resolution_into_the_first_block():
    seen = {}
    net = model_for(["arch=torchvision", "arch.model=resnet18", "arch.cifar_stem=true"], input_shape=(3, 32, 32))
    resnet = net[1]
    assert resnet.conv1.kernel_size == (3, 3) and resnet.conv1.stride == (1, 1)
    assert isinstance(resnet.maxpool, nn.Identity)
    resnet.layer1.register_forward_pre_hook(lambda m, inp: seen.update(shape=tuple(inp[0].shape)))
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    assert seen["shape"] == (2, 64, 32, 32)  # the ImageNet stem would give 8x8 here
    plain = model_for(["arch=torchvision", "arch.model=resnet18"], input_shape=(3, 32, 32))
    assert plain[1].conv1.kernel_size == (7, 7)


def test_cifar_stem_on_a_model_without_that_stem_is_a_config_error():
    with pytest.raises(ConfigError, match="arch.cifar_stem"):
        model_for(["arch=torchvision", "arch.model=mobilenet_v3_small", "arch.cifar_stem=true"], input_shape=(3, 32, 32))
