"""norm=: one schema per option (the builders are in trainlab.nn.norms)."""
from dataclasses import dataclass

from trainlab.errors import check
from trainlab.registry import Registry

NORMS = Registry("norm", builders="trainlab.nn.norms")
PLACEMENTS = ("before", "after")


@NORMS.option("none", "No normalization layers.")
@dataclass
class NoNormSchema:
    name: str = "none"


@dataclass
class NormBase:
    """The keys of every option that adds a normalization layer after each hidden layer."""

    name: str = ""
    placement: str = "before"  # before the activation (as in the batch norm paper) or after it
    affine: bool = True        # learnable scale and shift

    def __post_init__(self):
        check(self.placement in PLACEMENTS, "placement", self.placement, "one of before, after")


@NORMS.option("batchnorm", "Batch norm: normalize each unit over the batch; running statistics at eval time.")
@dataclass
class BatchNormSchema(NormBase):
    name: str = "batchnorm"
    momentum: float = 0.1  # running-statistics update rate per step

    def __post_init__(self):
        super().__post_init__()
        check(0 < self.momentum <= 1, "momentum", self.momentum, "a rate in (0, 1]")


@NORMS.option("layernorm", "Layer norm: normalize each example over its units (conv: over C, H, W).")
@dataclass
class LayerNormSchema(NormBase):
    name: str = "layernorm"


@NORMS.option("instancenorm", "Instance norm: normalize each example's channel over H, W (convnets only).")
@dataclass
class InstanceNormSchema(NormBase):
    name: str = "instancenorm"


@NORMS.option("groupnorm", "Group norm: normalize each example over groups of channels.")
@dataclass
class GroupNormSchema(NormBase):
    name: str = "groupnorm"
    groups: int = 8  # channels are split into this many groups; must divide every layer's width

    def __post_init__(self):
        super().__post_init__()
        check(self.groups >= 1, "groups", self.groups, "an integer >= 1")
