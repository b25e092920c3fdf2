"""Optimizers by name (`optimizer=`), all from torch.optim.

Each option has its own schema so a key that does not apply (betas for sgd)
is an error rather than silently ignored. `weight_decay` here is torch's
built-in decay applied inside the optimizer step; the L2 *penalty* added to
the loss is the `regularizer=l2` option, kept distinct on purpose.
"""
from dataclasses import dataclass, field

import torch

from trainlab.errors import check
from trainlab.registry import Registry

OPTIMIZERS = Registry("optimizer")


@dataclass
class OptimizerSchema:
    name: str = ""
    lr: float = 0.01             # base learning rate
    weight_decay: float = 0.0    # torch's in-optimizer decay (decoupled for adamw), applied to weights only

    def __post_init__(self):
        check(self.lr > 0, "lr", self.lr, "a positive learning rate")
        check(self.weight_decay >= 0, "weight_decay", self.weight_decay, "a non-negative number")


@dataclass
class SGDSchema(OptimizerSchema):
    name: str = "sgd"


@dataclass
class MomentumSchema(OptimizerSchema):
    name: str = "momentum"
    momentum: float = 0.9        # fraction of the previous update kept
    dampening: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        check(0 <= self.momentum < 1, "momentum", self.momentum, "a fraction in [0, 1)")


@dataclass
class AdamSchema(OptimizerSchema):
    name: str = "adam"
    lr: float = 1e-3
    betas: list = field(default_factory=lambda: [0.9, 0.999])  # decay rates of the 1st and 2nd moment estimates
    eps: float = 1e-8
    amsgrad: bool = False

    def __post_init__(self):
        super().__post_init__()
        check(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "betas", list(self.betas),
              "two fractions in [0, 1)")
        check(self.eps > 0, "eps", self.eps, "a positive number")


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weights (dim > 1) decay; biases and norm scales/shifts do not."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() > 1]
    rest = [p for p in model.parameters() if p.requires_grad and p.dim() <= 1]
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if rest:
        groups.append({"params": rest, "weight_decay": 0.0})
    return groups


def build_optimizer(cfg, model: torch.nn.Module, batch_size: int) -> torch.optim.Optimizer:
    """The optimizer for a model; `batch_size` is there for learning-rate scaling rules."""
    return OPTIMIZERS[cfg.name].build(cfg, model)


def gradient_clipper(cfg):
    """A callable clipping gradients in place before each step, or None (no clipping configured)."""
    return None


@OPTIMIZERS.register("sgd", SGDSchema)
def build_sgd(cfg, model):
    return torch.optim.SGD(param_groups(model, cfg.weight_decay), lr=cfg.lr)


@OPTIMIZERS.register("momentum", MomentumSchema)
def build_momentum(cfg, model):
    return torch.optim.SGD(param_groups(model, cfg.weight_decay), lr=cfg.lr, momentum=cfg.momentum,
                           dampening=cfg.dampening)


@OPTIMIZERS.register("adam", AdamSchema)
def build_adam(cfg, model):
    return torch.optim.Adam(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=tuple(cfg.betas),
                            eps=cfg.eps, amsgrad=cfg.amsgrad)
