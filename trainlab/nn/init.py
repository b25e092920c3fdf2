"""Weight initialization by name (`init=`), applied to every linear/conv layer.

The gain comes from the activation (see activations.py): tanh wants 5/3,
ReLU sqrt(2), and so on, which is what keeps a deep net's activations from
shrinking to zero or saturating (the classic init study; see `trainlab inspect`).
The classifier head has no activation after it, so it always gets the linear gain.
"""
import math
from dataclasses import dataclass

import torch
from torch import nn

from trainlab.errors import check
from trainlab.registry import Registry

INITS = Registry("init")
DISTRIBUTIONS = ("normal", "uniform")


@dataclass
class InitSchema:
    name: str = "default"
    bias: float | None = 0.0       # value for every bias; null keeps the layer's own default
    std: float = 0.01              # normal: standard deviation
    a: float = 0.05                # uniform: weights drawn from U(-a, a)
    value: float = 0.0             # constant: every weight set to this
    distribution: str = "normal"   # xavier / kaiming / lecun: normal or uniform
    mode: str = "fan_in"           # kaiming: fan_in preserves forward variance, fan_out backward
    gain: float | None = None      # xavier / orthogonal: null takes the activation's gain
    head_scale: float = 1.0        # classifier head weights x this: small makes the initial loss ~ ln(C)

    def __post_init__(self):
        check(self.std > 0, "std", self.std, "a positive standard deviation")
        check(self.a > 0, "a", self.a, "a positive half-width")
        check(self.distribution in DISTRIBUTIONS, "distribution", self.distribution, "one of normal, uniform")
        check(self.mode in ("fan_in", "fan_out"), "mode", self.mode, "one of fan_in, fan_out")
        check(self.gain is None or self.gain > 0, "gain", self.gain, "a positive number or null")
        check(self.head_scale > 0, "head_scale", self.head_scale, "a positive multiplier")


def _gain(cfg, nonlinearity, param):
    return cfg.gain if cfg.gain is not None else nn.init.calculate_gain(nonlinearity, param)


def _fan_in(w):
    return w[0].numel()


def _default(cfg, w, nl, p):
    pass  # keep PyTorch's own per-layer init


def _zeros(cfg, w, nl, p):
    nn.init.zeros_(w)


def _constant(cfg, w, nl, p):
    nn.init.constant_(w, cfg.value)


def _normal(cfg, w, nl, p):
    nn.init.normal_(w, 0.0, cfg.std)


def _uniform(cfg, w, nl, p):
    nn.init.uniform_(w, -cfg.a, cfg.a)


def _xavier(cfg, w, nl, p):
    fn = nn.init.xavier_normal_ if cfg.distribution == "normal" else nn.init.xavier_uniform_
    fn(w, gain=_gain(cfg, nl, p))


def _kaiming(cfg, w, nl, p):
    fn = nn.init.kaiming_normal_ if cfg.distribution == "normal" else nn.init.kaiming_uniform_
    # kaiming_* understand only torch's nonlinearity names; ReLU-like ones map to relu
    known = nl if nl in ("linear", "sigmoid", "tanh", "relu", "leaky_relu", "selu") else "relu"
    fn(w, a=p or 0.0, mode=cfg.mode, nonlinearity=known)


def _lecun(cfg, w, nl, p):
    # variance 1/fan_in: the init SELU's self-normalization assumes
    std = 1.0 / math.sqrt(_fan_in(w))
    if cfg.distribution == "normal":
        nn.init.normal_(w, 0.0, std)
    else:
        bound = math.sqrt(3.0) * std
        nn.init.uniform_(w, -bound, bound)


def _orthogonal(cfg, w, nl, p):
    nn.init.orthogonal_(w, gain=_gain(cfg, nl, p))


_WEIGHT_INITS = {"default": _default, "zeros": _zeros, "constant": _constant, "normal": _normal,
                 "uniform": _uniform, "xavier": _xavier, "kaiming": _kaiming, "lecun": _lecun,
                 "orthogonal": _orthogonal}


class Initializer:
    """Initializes every Linear/Conv weight and bias of a model in place."""

    def __init__(self, cfg: InitSchema, weight_init):
        self.cfg, self.weight_init = cfg, weight_init

    @torch.no_grad()
    def __call__(self, model: nn.Module, nonlinearity: str, param: float | None = None) -> None:
        layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]
        for i, layer in enumerate(layers):
            is_head = i == len(layers) - 1
            self.weight_init(self.cfg, layer.weight, "linear" if is_head else nonlinearity, None if is_head else param)
            if is_head and self.cfg.name != "default":
                layer.weight.mul_(self.cfg.head_scale)
            if layer.bias is not None and self.cfg.bias is not None and self.cfg.name != "default":
                nn.init.constant_(layer.bias, self.cfg.bias)


for _name, _fn in _WEIGHT_INITS.items():
    INITS.register(_name, InitSchema)(lambda cfg, _fn=_fn: Initializer(cfg, _fn))
