"""Regularizers by name (`regularizer=`), combinable: `regularizer=[l2,dropout]`.

Penalties (l2) are added to the training loss and reported separately from
the data loss; dropout is built into the architecture. Only weights (tensors
with more than one dimension) are penalized: biases and norm parameters are
not, as is standard.
"""
from dataclasses import dataclass

import torch

from trainlab.errors import check
from trainlab.registry import Registry

REGULARIZERS = Registry("regularizer")


@dataclass
class L2Schema:
    strength: float = 1e-4  # lambda in lambda * sum(w^2)

    def __post_init__(self):
        check(self.strength >= 0, "strength", self.strength, "a non-negative number")


@dataclass
class DropoutSchema:
    p: float = 0.5  # DROP probability (inverted dropout: kept units are scaled by 1/(1-p))

    def __post_init__(self):
        check(0 <= self.p < 1, "p", self.p, "a drop probability in [0, 1)")


class Penalty:
    """A function of the model's weights added to the loss."""

    def __call__(self, weights: list[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError


class L2Penalty(Penalty):
    def __init__(self, cfg: L2Schema):
        self.strength = cfg.strength

    def __call__(self, weights):
        return self.strength * sum((w * w).sum() for w in weights)


REGULARIZERS.register("l2", L2Schema)(L2Penalty)
REGULARIZERS.register("dropout", DropoutSchema)(lambda cfg: None)  # built into the architecture


def build_constraints(selected: dict) -> list:
    """Callables `(weights, lr)` applied after every optimizer step (e.g. max-norm projection)."""
    return []


def penalized_weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p for p in model.parameters() if p.requires_grad and p.dim() > 1]


def build_penalties(selected: dict) -> list[Penalty]:
    built = (REGULARIZERS[name].build(cfg) for name, cfg in selected.items())
    return [p for p in built if p is not None]


def dropout_probability(selected: dict) -> float:
    return selected["dropout"].p if "dropout" in selected else 0.0
