"""Regularizers by name (`regularizer=`), combinable: `regularizer=[l2,dropout]`.

Three kinds, each option under its own key so that combinations merge:

- penalties (l2, l1, elastic_net) are functions of the weights added to the
  training loss; the engine reports them separately as train_penalty.
  `apply_to: weights` (the default) penalizes only weight tensors (dim > 1);
  `all` adds biases and norm scales/shifts, which is rarely what you want.
- constraints (maxnorm, weight_decay) act on the weights in place after every
  optimizer step: `constraint(weights, lr)`.
- dropout is built into the architecture; only its probability lives here.
"""
from dataclasses import dataclass

import torch

from trainlab.errors import check
from trainlab.registry import Registry

REGULARIZERS = Registry("regularizer")
APPLY_TO = ("weights", "all")


# -- schemas ---------------------------------------------------------------------------------------
@dataclass
class PenaltySchema:
    strength: float = 1e-4      # lambda, the penalty's weight in the loss
    apply_to: str = "weights"   # weights (dim > 1 tensors) or all (also biases and norm parameters)

    def __post_init__(self):
        check(self.strength >= 0, "strength", self.strength, "a non-negative number")
        check(self.apply_to in APPLY_TO, "apply_to", self.apply_to, "one of weights, all")


@dataclass
class ElasticNetSchema(PenaltySchema):
    beta: float = 1.0  # weight of the squared term: lambda * sum(beta * w^2 + |w|)

    def __post_init__(self):
        super().__post_init__()
        check(self.beta >= 0, "beta", self.beta, "a non-negative number")


@dataclass
class MaxNormSchema:
    max_norm: float = 3.0  # c: each neuron's incoming weight vector is projected onto ||w||_2 <= c

    def __post_init__(self):
        check(self.max_norm > 0, "max_norm", self.max_norm, "a positive norm")


@dataclass
class WeightDecaySchema:
    strength: float = 5e-4  # lambda in w <- w - lr * lambda * w after every step

    def __post_init__(self):
        check(self.strength >= 0, "strength", self.strength, "a non-negative number")


@dataclass
class DropoutSchema:
    p: float = 0.5  # DROP probability (inverted dropout: kept units are scaled by 1/(1-p))

    def __post_init__(self):
        check(0 <= self.p < 1, "p", self.p, "a drop probability in [0, 1)")


# -- penalties: callables weights -> scalar tensor ----------------------------------------------------
class Penalty:
    """strength * sum of `term(w)` over the weights passed in, plus over `extra` (biases and norm
    parameters bound at build time when apply_to is all)."""

    def __init__(self, cfg: PenaltySchema, extra: list[torch.Tensor]):
        self.strength, self.extra = cfg.strength, extra

    def term(self, w: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, weights: list[torch.Tensor]) -> torch.Tensor:
        return self.strength * sum(self.term(w) for w in [*weights, *self.extra])


class L2Penalty(Penalty):
    """lambda * sum(w^2)"""

    def term(self, w):
        return (w * w).sum()


class L1Penalty(Penalty):
    """lambda * sum(|w|)"""

    def term(self, w):
        return w.abs().sum()


class ElasticNetPenalty(Penalty):
    """lambda * sum(beta * w^2 + |w|)"""

    def __init__(self, cfg: ElasticNetSchema, extra: list[torch.Tensor]):
        super().__init__(cfg, extra)
        self.beta = cfg.beta

    def term(self, w):
        return self.beta * (w * w).sum() + w.abs().sum()


# -- constraints: callables (weights, lr) applied in place after each step -----------------------------
class Constraint:
    """Marks a regularizer applied to the weights in place after every optimizer step."""


class MaxNorm(Constraint):
    """Project each neuron's incoming weights onto the L2 ball of radius c: rows of a Linear
    weight, output filters (flattened) of a conv weight; rows already inside are untouched."""

    def __init__(self, cfg: MaxNormSchema):
        self.max_norm = cfg.max_norm

    @torch.no_grad()
    def __call__(self, weights: list[torch.Tensor], lr: float) -> None:
        for w in weights:
            w.renorm_(p=2, dim=0, maxnorm=self.max_norm)  # slices along dim 0 = one neuron each


class DecoupledWeightDecay(Constraint):
    """w <- (1 - lr * lambda) * w after each step, independent of the gradient and the optimizer."""

    def __init__(self, cfg: WeightDecaySchema):
        self.strength = cfg.strength

    @torch.no_grad()
    def __call__(self, weights: list[torch.Tensor], lr: float) -> None:
        shrink = 1.0 - lr * self.strength
        for w in weights:
            w.mul_(shrink)


REGULARIZERS.register("l2", PenaltySchema)(L2Penalty)
REGULARIZERS.register("l1", PenaltySchema)(L1Penalty)
REGULARIZERS.register("elastic_net", ElasticNetSchema)(ElasticNetPenalty)
REGULARIZERS.register("maxnorm", MaxNormSchema)(MaxNorm)
REGULARIZERS.register("weight_decay", WeightDecaySchema)(DecoupledWeightDecay)
REGULARIZERS.register("dropout", DropoutSchema)(None)  # built into the architecture


def penalized_weights(model: torch.nn.Module) -> list[torch.Tensor]:
    """The tensors every penalty and constraint acts on: weights (dim > 1), not biases or norm parameters."""
    return [p for p in model.parameters() if p.requires_grad and p.dim() > 1]


def unpenalized_parameters(model: torch.nn.Module) -> list[torch.Tensor]:
    """Biases and norm scales/shifts: what `apply_to: all` adds."""
    return [p for p in model.parameters() if p.requires_grad and p.dim() <= 1]


def build_penalties(selected: dict, model: torch.nn.Module | None = None) -> list[Penalty]:
    """Penalties among the selected options, each a callable `weights -> scalar tensor`.

    `model` is needed only when a penalty has `apply_to: all`: its biases and
    norm parameters are bound then and penalized alongside the weights passed in.
    """
    penalties = []
    for name, cfg in selected.items():
        build = REGULARIZERS[name].build
        if not _builds(build, Penalty):
            continue
        if cfg.apply_to == "all" and model is None:
            raise ValueError(f"regularizer {name} with apply_to=all needs the model: build_penalties(selected, model)")
        penalties.append(build(cfg, unpenalized_parameters(model) if cfg.apply_to == "all" else []))
    return penalties


def build_constraints(selected: dict) -> list:
    """Callables `(weights, lr)` applied in place after every optimizer step (max-norm, decoupled decay)."""
    return [REGULARIZERS[name].build(cfg) for name, cfg in selected.items()
            if _builds(REGULARIZERS[name].build, Constraint)]


def _builds(build, kind: type) -> bool:
    return isinstance(build, type) and issubclass(build, kind)


def dropout_probability(selected: dict) -> float:
    return selected["dropout"].p if "dropout" in selected else 0.0
