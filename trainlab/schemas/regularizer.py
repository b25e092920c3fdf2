"""regularizer=: one schema per option (the builders are in trainlab.optim.regularizers).

The options combine (`regularizer=[l2,dropout]`), so each lives under its own key
and has no `name` field. `regularizer=none` selects none of them: conf/regularizer/none.yaml
is a hand-written empty mapping, not an option.
"""
from dataclasses import dataclass

from trainlab.errors import check
from trainlab.registry import Registry

REGULARIZERS = Registry("regularizer", builders="trainlab.optim.regularizers")
APPLY_TO = ("weights", "all")


@dataclass
class PenaltyBase:
    """A penalty added to the training loss, reported separately as train_penalty."""

    strength: float = 1e-4      # lambda (per unit of loss)
    apply_to: str = "weights"   # weights (tensors with dim > 1) or all (also biases and norm parameters)

    def __post_init__(self):
        check(self.strength >= 0, "strength", self.strength, "a non-negative number")
        check(self.apply_to in APPLY_TO, "apply_to", self.apply_to, "one of weights, all")


@REGULARIZERS.option("l2", "L2 penalty added to the loss: strength * sum(w^2).")
@dataclass
class L2Schema(PenaltyBase):
    """Its gradient 2 * strength * w goes through the optimizer (momentum, adaptive scaling);
    compare regularizer=weight_decay."""


@REGULARIZERS.option("l1", "L1 penalty added to the loss: strength * sum(|w|); drives small weights towards exactly zero.")
@dataclass
class L1Schema(PenaltyBase):
    strength: float = 1e-5      # lambda (per unit of loss)


@REGULARIZERS.option("elastic_net", "Elastic net penalty added to the loss: strength * sum(beta * w^2 + |w|).")
@dataclass
class ElasticNetSchema(PenaltyBase):
    """That is an L1 weight of strength and an L2 weight of strength * beta."""

    strength: float = 1e-5  # lambda: weight of the |w| term (per unit of loss)
    beta: float = 1.0       # beta: weight of the w^2 term relative to the |w| term

    def __post_init__(self):
        super().__post_init__()
        check(self.beta >= 0, "beta", self.beta, "a non-negative number")


@REGULARIZERS.option("maxnorm", "Max-norm constraint: after every optimizer step, each neuron's incoming weights "
                                "are projected onto ||w||_2 <= max_norm.")
@dataclass
class MaxNormSchema:
    """A neuron's incoming weights are a row of a Linear weight, or one output filter of a
    conv, flattened; only vectors longer than max_norm change. Biases are not constrained.
    Pairs well with dropout."""

    max_norm: float = 3.0  # c, the largest allowed L2 norm per neuron

    def __post_init__(self):
        check(self.max_norm > 0, "max_norm", self.max_norm, "a positive norm")


@REGULARIZERS.option("weight_decay", "Decoupled weight decay: after every optimizer step, w <- w - lr * strength * w, "
                                     "on weights only.")
@dataclass
class WeightDecaySchema:
    """lr is the current scheduled lr. Unlike regularizer=l2 it is not part of the loss
    (train_penalty stays 0) and never passes through the optimizer's momentum or adaptive
    scaling, so with adam it behaves like adamw's decay. With plain sgd it is (up to an
    lr^2 term) optimizer.weight_decay = strength, or l2 with strength / 2."""

    strength: float = 5e-4  # lambda: fraction of each weight removed per unit of lr per step

    def __post_init__(self):
        check(self.strength >= 0, "strength", self.strength, "a non-negative number")


@REGULARIZERS.option("dropout", "Inverted dropout after each hidden activation; p is the DROP probability.")
@dataclass
class DropoutSchema:
    """input_p also drops input features (pixels) before the first layer, as in Srivastava et al.
    2014 (about 0.2 on the inputs, 0.5 on hidden units); arch=mlp and arch=cnn only."""

    p: float = 0.5        # probability of zeroing a unit during training (kept units scaled by 1/(1-p))
    input_p: float = 0.0  # probability of zeroing an input feature during training (0 = off)

    def __post_init__(self):
        check(0 <= self.p < 1, "p", self.p, "a drop probability in [0, 1)")
        check(0 <= self.input_p < 1, "input_p", self.input_p, "a drop probability in [0, 1)")


@REGULARIZERS.option("stochastic_depth", "Stochastic depth (Huang et al. 2016): each residual branch is dropped per example "
                                         "in training, with a probability growing linearly with depth up to p.")
@dataclass
class StochasticDepthSchema:
    """Residual block l of L drops its branch with probability p * l / L (the last one with p)
    and scales a kept branch by 1 / (1 - p_l), so the expected output is unchanged and the
    network is deterministic in eval mode. Needs residual blocks: arch=resnet, or
    arch=torchvision with a ResNet-family model (resnet*, resnext*, wide_resnet*)."""

    p: float = 0.2  # drop probability of the last residual branch (kept branches scaled by 1/(1-p_l))

    def __post_init__(self):
        check(0 <= self.p < 1, "p", self.p, "a drop probability in [0, 1)")
