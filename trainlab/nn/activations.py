"""Activation functions by name (`activation=`), with what init needs to know.

Each option builds a module for a layer of `width` units. Two things make this
more than `getattr(nn, name)`: maxout needs the layer before it widened by k
(`width_multiplier`), and weight init needs the gain that keeps signal variance
steady through this nonlinearity (`init_nonlinearity`, in torch.nn.init terms).
"""
from dataclasses import dataclass

import torch
from torch import nn

from trainlab.schemas.activation import (ACTIVATIONS, EluSchema, GeluSchema, LeakyReluSchema, MaxoutSchema,
                                         PReluSchema, SoftplusSchema, SwishSchema)


@dataclass
class Activation:
    """What the architectures and init need from an activation option."""

    make: callable               # width -> nn.Module
    init_nonlinearity: str       # name for torch.nn.init.calculate_gain / kaiming_*
    init_param: float | None = None  # negative slope for leaky_relu's gain
    width_multiplier: int = 1    # maxout: the preceding layer emits k * width units
    has_kinks: bool = False      # non-differentiable points matter for gradient checks
    name: str = ""               # the option name, filled in by build_model


class Swish(nn.Module):
    """x * sigmoid(beta * x) with an optionally learnable beta per unit."""

    is_activation = True  # found by the activation-statistics hooks (inspect, live diagnostics)

    def __init__(self, width: int, beta: float, learnable: bool):
        super().__init__()
        init = torch.full((width,), float(beta))
        if learnable:
            self.beta = nn.Parameter(init)
        else:
            self.register_buffer("beta", init)

    def forward(self, x):
        # beta is per unit: units are dim 1 for both (N, W) and (N, C, H, W)
        beta = self.beta.view(1, -1, *([1] * (x.dim() - 2)))
        return x * torch.sigmoid(beta * x)


class Maxout(nn.Module):
    """Max over k groups of units: (N, k*W, ...) -> (N, W, ...)."""

    has_kinks = True
    is_activation = True

    def __init__(self, pieces: int):
        super().__init__()
        self.pieces = pieces

    def forward(self, x):
        n, kw = x.shape[:2]
        return x.view(n, kw // self.pieces, self.pieces, *x.shape[2:]).amax(dim=2)


# Gains follow torch.nn.init.calculate_gain; smooth ReLU-like functions
# (elu, swish, gelu, softplus) use the ReLU gain since they pass roughly half
# the variance of a zero-mean input, as ReLU does.
SIMPLE = {"sigmoid": (nn.Sigmoid, "sigmoid", False), "tanh": (nn.Tanh, "tanh", False),
          "relu": (nn.ReLU, "relu", True), "selu": (nn.SELU, "selu", True)}


@ACTIVATIONS.builder(*SIMPLE)
def build_simple(cfg):
    module, nonlinearity, kinks = SIMPLE[cfg.name]
    return Activation(lambda width: module(), nonlinearity, has_kinks=kinks)


@ACTIVATIONS.builder("leaky_relu")
def build_leaky_relu(cfg: LeakyReluSchema):
    return Activation(lambda width: nn.LeakyReLU(cfg.negative_slope), "leaky_relu",
                      init_param=cfg.negative_slope, has_kinks=True)


@ACTIVATIONS.builder("prelu")
def build_prelu(cfg: PReluSchema):
    def make(width):
        return nn.PReLU(width if cfg.per_channel else 1, init=cfg.init)

    return Activation(make, "leaky_relu", init_param=cfg.init, has_kinks=True)


@ACTIVATIONS.builder("elu")
def build_elu(cfg: EluSchema):
    return Activation(lambda width: nn.ELU(cfg.alpha), "relu", has_kinks=cfg.alpha != 1.0)


@ACTIVATIONS.builder("swish")
def build_swish(cfg: SwishSchema):
    return Activation(lambda width: Swish(width, cfg.beta, cfg.learnable), "relu")


@ACTIVATIONS.builder("softplus")
def build_softplus(cfg: SoftplusSchema):
    return Activation(lambda width: nn.Softplus(cfg.beta), "relu")


@ACTIVATIONS.builder("gelu")
def build_gelu(cfg: GeluSchema):
    return Activation(lambda width: nn.GELU(cfg.approximate), "relu")


@ACTIVATIONS.builder("maxout")
def build_maxout(cfg: MaxoutSchema):
    # Each piece is a linear unit, so init uses the linear gain.
    return Activation(lambda width: Maxout(cfg.pieces), "linear",
                      width_multiplier=cfg.pieces, has_kinks=True)
