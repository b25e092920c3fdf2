"""Regularizers by name (`regularizer=`), combinable: `regularizer=[l2,dropout]`.

Three kinds, each option under its own key so that combinations merge:

- penalties (l2, l1, elastic_net) are functions of the weights added to the
  training loss; the engine reports them separately as train_penalty.
  `apply_to: weights` (the default) penalizes only weight tensors (dim > 1);
  `all` adds biases and norm scales/shifts, which is rarely what you want.
- constraints (maxnorm, weight_decay) act on the weights in place after every
  optimizer step: `constraint(weights, lr)`.
- dropout and stochastic depth are built into the architecture; only their probabilities
  live here.
"""
import torch

from trainlab.schemas.regularizer import (REGULARIZERS, DropoutSchema, ElasticNetSchema, MaxNormSchema, PenaltyBase,
                                          StochasticDepthSchema, WeightDecaySchema)


# -- penalties: callables weights -> scalar tensor ----------------------------------------------------
class Penalty:
    """strength * sum of `term(w)` over the weights passed in, plus over `extra` (biases and norm
    parameters bound at build time when apply_to is all)."""

    def __init__(self, cfg: PenaltyBase, extra: list[torch.Tensor]):
        self.strength, self.extra = cfg.strength, extra

    def term(self, w: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, weights: list[torch.Tensor]) -> torch.Tensor:
        return self.strength * sum(self.term(w) for w in [*weights, *self.extra])


@REGULARIZERS.builder("l2")
class L2Penalty(Penalty):
    """lambda * sum(w^2)"""

    def term(self, w):
        return (w * w).sum()


@REGULARIZERS.builder("l1")
class L1Penalty(Penalty):
    """lambda * sum(|w|)"""

    def term(self, w):
        return w.abs().sum()


@REGULARIZERS.builder("elastic_net")
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


@REGULARIZERS.builder("maxnorm")
class MaxNorm(Constraint):
    """Project each neuron's incoming weights onto the L2 ball of radius c: rows of a Linear
    weight, output filters (flattened) of a conv weight; rows already inside are untouched."""

    def __init__(self, cfg: MaxNormSchema):
        self.max_norm = cfg.max_norm

    @torch.no_grad()
    def __call__(self, weights: list[torch.Tensor], lr: float) -> None:
        for w in weights:
            w.renorm_(p=2, dim=0, maxnorm=self.max_norm)  # slices along dim 0 = one neuron each


@REGULARIZERS.builder("weight_decay")
class DecoupledWeightDecay(Constraint):
    """w <- (1 - lr * lambda) * w after each step, independent of the gradient and the optimizer."""

    def __init__(self, cfg: WeightDecaySchema):
        self.strength = cfg.strength

    @torch.no_grad()
    def __call__(self, weights: list[torch.Tensor], lr: float) -> None:
        shrink = 1.0 - lr * self.strength
        for w in weights:
            w.mul_(shrink)


@REGULARIZERS.builder("dropout")
class ArchitectureDropout:
    """Dropout is built into the architecture (build_model reads `dropout_probability`); this builder
    exists so every option has one, and is neither a penalty nor a constraint."""

    def __init__(self, cfg: DropoutSchema):
        self.p = cfg.p


@REGULARIZERS.builder("stochastic_depth")
class ArchitectureStochasticDepth:
    """Stochastic depth is built into the residual blocks (build_model reads
    its p from the spec); like dropout, neither a penalty nor a constraint."""

    def __init__(self, cfg: StochasticDepthSchema):
        self.p = cfg.p


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


def input_dropout_probability(selected: dict) -> float:
    return selected["dropout"].input_p if "dropout" in selected else 0.0
