"""Weight initialization by name (`init=`), applied to every linear/conv layer.

The gain comes from the activation (see activations.py): tanh wants 5/3,
ReLU sqrt(2), and so on, which is what keeps a deep net's activations from
shrinking to zero or saturating (the classic init study; see `trainlab inspect`).
The classifier head has no activation after it, so it always gets the linear gain.
"""
import math

import torch
from torch import nn

from trainlab.schemas.init import (INITS, ConstantSchema, DefaultSchema, InitBase, KaimingSchema, LecunSchema,
                                   NormalSchema, OrthogonalSchema, UniformSchema, XavierSchema, ZerosSchema)


class Initializer:
    """Initializes every Linear/Conv weight and bias of a model in place.

    `weight_init(weight, nonlinearity, param)` fills one weight tensor; the head's
    weights are then scaled by head_scale and every bias set to cfg.bias.
    """

    def __init__(self, cfg: InitBase, weight_init):
        self.cfg, self.weight_init = cfg, weight_init

    @torch.no_grad()
    def __call__(self, model: nn.Module, nonlinearity: str, param: float | None = None) -> None:
        layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]
        for i, layer in enumerate(layers):
            is_head = i == len(layers) - 1
            self.weight_init(layer.weight, "linear" if is_head else nonlinearity, None if is_head else param)
            if is_head:
                layer.weight.mul_(self.cfg.head_scale)
            if layer.bias is not None and self.cfg.bias is not None:
                nn.init.constant_(layer.bias, self.cfg.bias)


def _gain(gain: float | None, nonlinearity: str, param) -> float:
    return gain if gain is not None else nn.init.calculate_gain(nonlinearity, param)


@INITS.builder("default")
def build_default(cfg: DefaultSchema):
    return lambda model, nonlinearity, param=None: None  # keep PyTorch's own per-layer init


@INITS.builder("zeros")
def build_zeros(cfg: ZerosSchema):
    return Initializer(cfg, lambda w, nl, p: nn.init.zeros_(w))


@INITS.builder("constant")
def build_constant(cfg: ConstantSchema):
    return Initializer(cfg, lambda w, nl, p: nn.init.constant_(w, cfg.value))


@INITS.builder("normal")
def build_normal(cfg: NormalSchema):
    return Initializer(cfg, lambda w, nl, p: nn.init.normal_(w, 0.0, cfg.std))


@INITS.builder("uniform")
def build_uniform(cfg: UniformSchema):
    return Initializer(cfg, lambda w, nl, p: nn.init.uniform_(w, -cfg.a, cfg.a))


@INITS.builder("xavier")
def build_xavier(cfg: XavierSchema):
    fill = nn.init.xavier_normal_ if cfg.distribution == "normal" else nn.init.xavier_uniform_
    return Initializer(cfg, lambda w, nl, p: fill(w, gain=_gain(cfg.gain, nl, p)))


# kaiming_* understand only torch's nonlinearity names; the ReLU-like ones map to relu
KAIMING_NONLINEARITIES = ("linear", "sigmoid", "tanh", "relu", "leaky_relu", "selu")


@INITS.builder("kaiming")
def build_kaiming(cfg: KaimingSchema):
    fill = nn.init.kaiming_normal_ if cfg.distribution == "normal" else nn.init.kaiming_uniform_

    def weight_init(w, nl, p):
        fill(w, a=p or 0.0, mode=cfg.mode, nonlinearity=nl if nl in KAIMING_NONLINEARITIES else "relu")

    return Initializer(cfg, weight_init)


@INITS.builder("lecun")
def build_lecun(cfg: LecunSchema):
    def weight_init(w, nl, p):
        # variance 1/fan_in: the init SELU's self-normalization assumes
        std = 1.0 / math.sqrt(w[0].numel())
        if cfg.distribution == "normal":
            nn.init.normal_(w, 0.0, std)
        else:
            bound = math.sqrt(3.0) * std
            nn.init.uniform_(w, -bound, bound)

    return Initializer(cfg, weight_init)


@INITS.builder("orthogonal")
def build_orthogonal(cfg: OrthogonalSchema):
    return Initializer(cfg, lambda w, nl, p: nn.init.orthogonal_(w, gain=_gain(cfg.gain, nl, p)))
