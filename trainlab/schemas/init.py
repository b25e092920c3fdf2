"""init=: one schema per option (the builders are in trainlab.nn.init).

Every option but `default` sets every Linear/Conv weight and bias of the model; the
classifier head has no activation after it, so it always gets the linear gain.
"""
from dataclasses import dataclass

from trainlab.errors import check
from trainlab.registry import Registry

INITS = Registry("init", builders="trainlab.nn.init")
DISTRIBUTIONS = ("normal", "uniform")


@INITS.option("default", "PyTorch's own per-layer initialization, untouched.")
@dataclass
class DefaultSchema:
    name: str = "default"


@dataclass
class InitBase:
    """The keys of every option that replaces PyTorch's initialization."""

    name: str = ""
    bias: float | None = 0.0  # every bias set to this (e.g. 0.01 for ReLU nets); null keeps the layer's default
    head_scale: float = 1.0   # classifier head weights x this (small: initial loss ~ ln C, see trainlab check)

    def __post_init__(self):
        check(self.head_scale > 0, "head_scale", self.head_scale, "a positive multiplier")


@dataclass
class ScaledBase(InitBase):
    """Inits that scale the variance to the layer's fan: their head starts 10x smaller."""

    head_scale: float = 0.1   # classifier head weights x this: 0.1 keeps the initial loss near ln C
                              # (see trainlab check); 1.0 gives the head the same variance as the rest


@dataclass
class DistributionBase(ScaledBase):
    distribution: str = "normal"  # normal or uniform, with the same variance

    def __post_init__(self):
        super().__post_init__()
        check(self.distribution in DISTRIBUTIONS, "distribution", self.distribution, "one of normal, uniform")


def _check_gain(gain: float | None) -> None:
    check(gain is None or gain > 0, "gain", gain, "a positive number or null")


@INITS.option("zeros", "All weights zero: every unit in a layer stays identical (symmetry is never broken).")
@dataclass
class ZerosSchema(InitBase):
    name: str = "zeros"


@INITS.option("constant", "Every weight the same value: like zeros, the symmetry is never broken.")
@dataclass
class ConstantSchema(InitBase):
    name: str = "constant"
    value: float = 0.01  # every weight set to this


@INITS.option("normal", "Small random numbers: N(0, std^2). std 0.01 makes deep nets' activations vanish.")
@dataclass
class NormalSchema(InitBase):
    name: str = "normal"
    std: float = 0.01  # standard deviation of every weight

    def __post_init__(self):
        super().__post_init__()
        check(self.std > 0, "std", self.std, "a positive standard deviation")


@INITS.option("uniform", "U(-a, a).")
@dataclass
class UniformSchema(InitBase):
    name: str = "uniform"
    a: float = 0.05  # weights drawn from U(-a, a)

    def __post_init__(self):
        super().__post_init__()
        check(self.a > 0, "a", self.a, "a positive half-width")


@INITS.option("xavier", "Glorot/Xavier: variance 2 / (fan_in + fan_out), times the activation's gain squared.")
@dataclass
class XavierSchema(DistributionBase):
    name: str = "xavier"
    gain: float | None = None  # null = the activation's gain (tanh 5/3, relu sqrt 2, ...)

    def __post_init__(self):
        super().__post_init__()
        _check_gain(self.gain)


@INITS.option("kaiming", "He/Kaiming: variance gain^2 / fan; keeps ReLU nets' activations from shrinking.")
@dataclass
class KaimingSchema(DistributionBase):
    name: str = "kaiming"
    mode: str = "fan_in"  # fan_in preserves the forward signal's variance, fan_out the backward one

    def __post_init__(self):
        super().__post_init__()
        check(self.mode in ("fan_in", "fan_out"), "mode", self.mode, "one of fan_in, fan_out")


@INITS.option("lecun", "LeCun: variance 1 / fan_in (what SELU assumes).")
@dataclass
class LecunSchema(DistributionBase):
    name: str = "lecun"


@INITS.option("orthogonal", "Orthogonal matrices (Saxe et al.), scaled by the gain.")
@dataclass
class OrthogonalSchema(ScaledBase):
    name: str = "orthogonal"
    gain: float | None = None  # null = the activation's gain (tanh 5/3, relu sqrt 2, ...)

    def __post_init__(self):
        super().__post_init__()
        _check_gain(self.gain)
