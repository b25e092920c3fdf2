"""Architectures by name (`arch=`): linear, mlp, cnn, resnet, torchvision.

Every hidden layer takes its activation, normalization and dropout from
BlockParts; init is applied to the whole model afterwards (see build_model).
"""
import math

import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.nn.blocks import BlockParts
from trainlab.nn.stochastic import BranchDrop, FractionalMaxPool, add_stochastic_depth, fractional_size, linear_depth_rule
from trainlab.schemas.arch import ARCHS, CNNSchema, LinearSchema, MLPSchema, ResNetSchema, TorchvisionSchema


def _needs_image(name: str, input_shape: tuple) -> None:
    if len(input_shape) != 3:
        raise ConfigError("arch", name, f"needs image input (C, H, W); the dataset gives shape {tuple(input_shape)}")


@ARCHS.builder("linear")
def build_linear(cfg: LinearSchema, parts: BlockParts, input_shape, num_classes):
    """A linear classifier on raw features: softmax or SVM depending on `loss=`."""
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), num_classes))


@ARCHS.builder("mlp")
def build_mlp(cfg: MLPSchema, parts: BlockParts, input_shape, num_classes):
    layers: list[nn.Module] = [nn.Flatten(), *parts.before_first_layer()]
    fan_in = math.prod(input_shape)
    for width in cfg.widths():
        layers.append(nn.Linear(fan_in, parts.layer_width(width)))
        layers += parts.after_layer(width, conv=False)
        fan_in = width
    layers.append(nn.Linear(fan_in, num_classes))
    return nn.Sequential(*layers)


@ARCHS.builder("cnn")
def build_cnn(cfg: CNNSchema, parts: BlockParts, input_shape, num_classes):
    _needs_image("cnn", input_shape)
    c_in, h, w = input_shape
    layers: list[nn.Module] = parts.before_first_layer()
    for c_out in cfg.channels:
        for _ in range(cfg.convs_per_stage):
            layers.append(nn.Conv2d(c_in, parts.layer_width(c_out), cfg.kernel, padding=cfg.kernel // 2))
            layers += parts.after_layer(c_out, conv=True)
            c_in = c_out
        if cfg.pool == "fractional" and fractional_size(min(h, w), cfg.pool_ratio) >= 1:
            layers.append(FractionalMaxPool(cfg.pool_ratio))
            h, w = fractional_size(h, cfg.pool_ratio), fractional_size(w, cfg.pool_ratio)
        elif cfg.pool in ("max", "avg") and min(h, w) >= 2:  # tiny inputs (8x8 digits) stop pooling at 1x1
            layers.append(nn.MaxPool2d(2) if cfg.pool == "max" else nn.AvgPool2d(2))
            h, w = h // 2, w // 2
    if cfg.global_pool:
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    else:
        layers.append(nn.Flatten())
        c_in = c_in * h * w
    if cfg.head_width:
        layers.append(nn.Linear(c_in, parts.layer_width(cfg.head_width)))
        layers += parts.after_layer(cfg.head_width, conv=False)
        c_in = cfg.head_width
    layers.append(nn.Linear(c_in, num_classes))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """Two 3x3 convs with an identity (or 1x1 projection) shortcut; with stochastic depth the
    branch is dropped per example with probability `drop` in training."""

    def __init__(self, c_in: int, c_out: int, stride: int, parts: BlockParts, drop: float = 0.0):
        super().__init__()
        wide = parts.layer_width(c_out)
        self.conv1 = nn.Conv2d(c_in, wide, 3, stride, 1, bias=False)
        self.post1 = nn.Sequential(*parts.after_layer(c_out, conv=True))
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        norm2 = parts.make_norm(c_out, True)
        self.norm2 = norm2 if norm2 is not None else nn.Identity()
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Conv2d(c_in, c_out, 1, stride, bias=False)
        self.act = parts.activation.make(c_out) if parts.activation.width_multiplier == 1 else nn.ReLU()
        self.drop = BranchDrop(drop) if drop > 0 else nn.Identity()

    def forward(self, x):
        out = self.norm2(self.conv2(self.post1(self.conv1(x))))
        return self.act(self.drop(out) + self.shortcut(x))


@ARCHS.builder("resnet")
def build_resnet(cfg: ResNetSchema, parts: BlockParts, input_shape, num_classes):
    _needs_image("resnet", input_shape)
    n = (cfg.depth - 2) // 6
    widths = [cfg.width, cfg.width * 2, cfg.width * 4]
    layers: list[nn.Module] = [nn.Conv2d(input_shape[0], parts.layer_width(widths[0]), 3, 1, 1, bias=False)]
    layers += [m for m in parts.after_layer(widths[0], conv=True) if not isinstance(m, nn.Dropout2d)]
    c_in = widths[0]
    drops = iter(linear_depth_rule(parts.stochastic_depth, 3 * n))
    for stage, c_out in enumerate(widths):
        for i in range(n):
            layers.append(BasicBlock(c_in, c_out, 2 if (stage > 0 and i == 0) else 1, parts, next(drops)))
            c_in = c_out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, num_classes)]
    return nn.Sequential(*layers)


def classification_models() -> list[str]:
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


class _Adapt(nn.Module):
    """Adapts dataset images to a torchvision model: channel count and size."""

    def __init__(self, in_channels: int, resize: int | None):
        super().__init__()
        self.repeat = 3 if in_channels == 1 else 1
        self.resize = resize

    def forward(self, x):
        if self.repeat > 1:
            x = x.expand(-1, self.repeat, -1, -1)
        if self.resize:
            x = nn.functional.interpolate(x, size=(self.resize, self.resize), mode="bilinear", align_corners=False)
        return x


@ARCHS.builder("torchvision")
def build_torchvision(cfg: TorchvisionSchema, parts: BlockParts, input_shape, num_classes):
    import torchvision

    _needs_image("torchvision", input_shape)
    names = classification_models()
    if cfg.model not in names:
        raise ConfigError("arch.model", cfg.model, "a torchvision classification model, e.g. " + ", ".join(names[:8]) + ", …")
    if input_shape[0] not in (1, 3):
        raise ConfigError("arch.model", cfg.model, f"torchvision models take 1- or 3-channel images, the dataset has {input_shape[0]}")
    if parts.dropout > 0:
        raise ConfigError("regularizer", "dropout", "arch=torchvision keeps the model's own dropout; drop the dropout regularizer")
    net = torchvision.models.get_model(cfg.model, weights=None, num_classes=num_classes)
    if cfg.cifar_stem:
        _use_cifar_stem(net, cfg.model)
    if parts.stochastic_depth > 0:
        add_stochastic_depth(net, parts.stochastic_depth)  # none added (not a ResNet): build_model refuses
    if parts.activation.name != "relu":
        _swap_relu(net, parts)
    return nn.Sequential(_Adapt(input_shape[0], cfg.resize), net)


def _use_cifar_stem(net: nn.Module, model: str) -> None:
    """The ImageNet stem (7x7 stride-2 conv, then a stride-2 max pool) shrinks a 32x32 image to
    8x8 before the first block; small-image ResNets start with a 3x3 stride-1 conv and no pool."""
    conv = getattr(net, "conv1", None)
    if not isinstance(conv, nn.Conv2d) or not hasattr(net, "maxpool"):
        raise ConfigError("arch.cifar_stem", True, f"false for {model}: only ResNet-style models "
                          "(a conv1 and a maxpool stem, e.g. resnet18, resnext50_32x4d, wide_resnet50_2) have that stem")
    net.conv1 = nn.Conv2d(conv.in_channels, conv.out_channels, 3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()


def _swap_relu(module: nn.Module, parts: BlockParts) -> None:
    """Replace the model's ReLUs with the configured activation (maxout excluded)."""
    if parts.activation.width_multiplier != 1:
        raise ConfigError("activation", "maxout", "maxout cannot be swapped into a torchvision model")
    for name, child in module.named_children():
        if isinstance(child, nn.ReLU):
            setattr(module, name, parts.activation.make(1))
        else:
            _swap_relu(child, parts)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def check_forward(model: nn.Module, input_shape: tuple, name: str) -> None:
    """Push one tiny batch through so shape errors surface before training, as a config error."""
    model_was_training = model.training
    model.eval()
    try:
        model(torch.zeros(2, *input_shape))
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise ConfigError("arch", name, f"cannot take inputs of shape {tuple(input_shape)} ({first})") from None
    finally:
        model.train(model_was_training)
