"""activation=: one schema per option (the builders are in trainlab.nn.activations)."""
from dataclasses import dataclass

from trainlab.errors import check
from trainlab.registry import Registry

ACTIVATIONS = Registry("activation", builders="trainlab.nn.activations")


@ACTIVATIONS.option("sigmoid", "Logistic sigmoid: saturates at 0 and 1 and is not zero-centered (a classic failure mode).")
@dataclass
class SigmoidSchema:
    name: str = "sigmoid"


@ACTIVATIONS.option("tanh", "tanh: zero-centered but saturates at ±1.")
@dataclass
class TanhSchema:
    name: str = "tanh"


@ACTIVATIONS.option("relu", "ReLU: max(0, x); units can die when their input stays negative.")
@dataclass
class ReluSchema:
    name: str = "relu"


@ACTIVATIONS.option("selu", "SELU: self-normalizing; pair with init=lecun.")
@dataclass
class SeluSchema:
    name: str = "selu"


@ACTIVATIONS.option("leaky_relu", "Leaky ReLU: a small slope for x < 0 keeps units from dying.")
@dataclass
class LeakyReluSchema:
    name: str = "leaky_relu"
    negative_slope: float = 0.01  # slope for x < 0

    def __post_init__(self):
        check(0 <= self.negative_slope < 1, "negative_slope", self.negative_slope, "a slope in [0, 1)")


@ACTIVATIONS.option("prelu", "PReLU: the negative slope is learned.")
@dataclass
class PReluSchema:
    name: str = "prelu"
    init: float = 0.25        # initial negative slope
    per_channel: bool = True  # one learnable slope per unit/channel (false: one shared slope)

    def __post_init__(self):
        check(0 <= self.init < 1, "init", self.init, "a slope in [0, 1)")


@ACTIVATIONS.option("elu", "ELU: smooth, negative saturation at -alpha pushes mean activations toward zero.")
@dataclass
class EluSchema:
    name: str = "elu"
    alpha: float = 1.0  # saturation value for x -> -inf is -alpha

    def __post_init__(self):
        check(self.alpha > 0, "alpha", self.alpha, "a positive number")


@ACTIVATIONS.option("swish", "Swish: x * sigmoid(beta x) (beta = 1 is SiLU).")
@dataclass
class SwishSchema:
    name: str = "swish"
    beta: float = 1.0        # x * sigmoid(beta * x); beta=1 is SiLU
    learnable: bool = False  # learn one beta per unit (Ramachandran et al.)


@ACTIVATIONS.option("softplus", "Softplus: log(1 + exp(beta x)) / beta, a smooth ReLU.")
@dataclass
class SoftplusSchema:
    name: str = "softplus"
    beta: float = 1.0  # sharpness: log(1 + exp(beta x)) / beta

    def __post_init__(self):
        check(self.beta > 0, "beta", self.beta, "a positive number")


@ACTIVATIONS.option("gelu", "GELU: x * Phi(x).")
@dataclass
class GeluSchema:
    name: str = "gelu"
    approximate: str = "none"  # none (exact erf) or tanh

    def __post_init__(self):
        check(self.approximate in ("none", "tanh"), "approximate", self.approximate, "one of none, tanh")


@ACTIVATIONS.option("maxout", "Maxout: each unit is the max of k linear pieces; the layer before it becomes k times wider.")
@dataclass
class MaxoutSchema:
    name: str = "maxout"
    pieces: int = 2  # k linear pieces per unit; the layer before is k times wider

    def __post_init__(self):
        check(self.pieces >= 2, "pieces", self.pieces, "an integer >= 2")
