"""arch=: one schema per option (the builders are in trainlab.nn.archs).

Every hidden layer takes its activation, normalization and dropout from the
activation=, norm= and regularizer= groups; init= is applied to the whole model.
"""
from dataclasses import dataclass, field
from typing import Any

from trainlab.errors import check
from trainlab.registry import Registry

ARCHS = Registry("arch", builders="trainlab.nn.archs")


@ARCHS.option("linear", "A linear classifier on the raw features: softmax (loss=cross_entropy) or SVM (loss=hinge).")
@dataclass
class LinearSchema:
    name: str = "linear"


@ARCHS.option("mlp", "Fully connected network: Linear -> [norm] -> activation -> [dropout], repeated.")
@dataclass
class MLPSchema:
    name: str = "mlp"
    depth: int = 2    # hidden layers
    width: Any = 256  # units per hidden layer, or a list like [512, 256] (then depth is its length)

    def __post_init__(self):
        check(self.depth >= 1, "depth", self.depth, "an integer >= 1")
        widths = self.widths()
        check(len(widths) >= 1 and all(isinstance(w, int) and w >= 1 for w in widths),
              "width", self.width, "a positive integer or a non-empty list of positive integers")

    def widths(self) -> list[int]:
        if isinstance(self.width, (list, tuple)) or hasattr(self.width, "__len__") and not isinstance(self.width, str):
            return list(self.width)
        return [self.width] * self.depth


@ARCHS.option("cnn", "Plain convnet: stages of conv -> [norm] -> activation, then pooling; global average pool; classifier.")
@dataclass
class CNNSchema:
    name: str = "cnn"
    channels: list = field(default_factory=lambda: [32, 64])  # output channels of each stage
    convs_per_stage: int = 1  # conv layers per stage before pooling
    kernel: int = 3           # square kernel size; odd, so same padding keeps the spatial size
    pool: str = "max"         # downsampling after each stage: max, avg, fractional or none (max and avg halve
                              # the size; fractional: max over pseudo-random regions, size x pool_ratio)
    pool_ratio: float = 0.71  # pool=fractional: output/input side per stage, in (0, 1) (Graham 2014: 1/sqrt(2))
    head_width: int = 0       # hidden units of a dense layer before the classifier (0 = none)
    global_pool: bool = True  # average each channel map to one value (position-free); false flattens the map

    def __post_init__(self):
        check(len(self.channels) >= 1 and all(isinstance(c, int) and c >= 1 for c in self.channels),
              "channels", list(self.channels), "a non-empty list of positive integers")
        check(self.convs_per_stage >= 1, "convs_per_stage", self.convs_per_stage, "an integer >= 1")
        check(self.kernel >= 1 and self.kernel % 2 == 1, "kernel", self.kernel, "an odd integer >= 1")
        check(self.pool in ("max", "avg", "fractional", "none"), "pool", self.pool, "one of max, avg, fractional, none")
        check(0 < self.pool_ratio < 1, "pool_ratio", self.pool_ratio, "a fraction in (0, 1): the output/input side")
        check(self.head_width >= 0, "head_width", self.head_width, "an integer >= 0")


@ARCHS.option("resnet", "CIFAR-style ResNet (He et al. 2016): 3 stages of basic blocks, 6n + 2 layers.")
@dataclass
class ResNetSchema:
    name: str = "resnet"
    depth: int = 20  # 6n + 2 layers, n basic blocks per stage: 8, 14, 20, 32, 44, 56, 110
    width: int = 16  # channels of the first stage (x2, x4 in the later stages)

    def __post_init__(self):
        check(self.depth >= 8 and (self.depth - 2) % 6 == 0, "depth", self.depth, "6n + 2 with n >= 1 (8, 14, 20, 32, 44, 56, 110)")
        check(self.width >= 1, "width", self.width, "an integer >= 1")


@ARCHS.option("torchvision", "Any torchvision.models classifier, untrained, with its head sized to the dataset's classes.")
@dataclass
class TorchvisionSchema:
    name: str = "torchvision"
    model: str = "resnet18"    # any torchvision.models classifier, e.g. resnet18, mobilenet_v3_small,
                               # efficientnet_b0, vgg11
    resize: int | None = None  # resize inputs to this square size first (e.g. 64; ImageNet models use 224);
                               # null keeps them
    cifar_stem: bool = False   # ResNet family: 3x3 stride-1 first conv and no max pool (keeps 32x32 inputs' resolution)
