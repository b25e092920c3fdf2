"""preprocess=: one schema per option (the preprocessors are in trainlab.data.preprocess).

Every option is fitted on the training split only and applied unchanged to val and test.
"""
from dataclasses import dataclass

from trainlab.errors import check
from trainlab.registry import Registry

PREPROCESS = Registry("preprocess", builders="trainlab.data.preprocess")


@PREPROCESS.option("none", "No preprocessing: [0, 1] pixels or raw features.")
@dataclass
class NoPreprocessSchema:
    name: str = "none"


@PREPROCESS.option("raw", "Raw pixels on the 0-255 scale, no scaling or centering (flat features pass unchanged).")
@dataclass
class RawSchema:
    name: str = "raw"


@PREPROCESS.option("center", "Mean subtraction, with the mean from the training split only.")
@dataclass
class CenterSchema:
    name: str = "center"
    mode: str = "per_channel"  # scalar (one mean), per_channel, or mean_image (a mean per pixel)

    def __post_init__(self):
        modes = ("scalar", "per_channel", "mean_image")
        check(self.mode in modes, "mode", self.mode, "one of " + ", ".join(modes))


@PREPROCESS.option("standardize", "Zero mean, unit variance, statistics from the training split only.")
@dataclass
class StandardizeSchema:
    name: str = "standardize"
    mode: str = "per_channel"  # per_channel (images) or per_feature (each input dimension)
    epsilon: float = 0.01      # added in quadrature to the std so constant inputs stay finite

    def __post_init__(self):
        modes = ("per_channel", "per_feature")
        check(self.mode in modes, "mode", self.mode, "one of " + ", ".join(modes))
        check(self.epsilon >= 0, "epsilon", self.epsilon, "a non-negative number")


@PREPROCESS.option("minmax", "Scale each input dimension to [-1, 1] with the training split's min and max.")
@dataclass
class MinMaxSchema:
    name: str = "minmax"


@dataclass
class ComponentsBase:
    """Keys of the options that project onto the training split's principal components."""

    name: str = ""
    components: int | None = None  # principal components kept (null = all)
    epsilon: float = 0.01          # added to each component's variance before whitening
                                   # (regularizes small eigenvalues: larger = gentler whitening)

    def __post_init__(self):
        check(self.components is None or self.components >= 1, "components", self.components, "a positive count or null")
        check(self.epsilon >= 0, "epsilon", self.epsilon, "a non-negative number")


@PREPROCESS.option("pca", "Project onto the top principal components of the training split (outputs a flat vector).")
@dataclass
class PcaSchema(ComponentsBase):
    name: str = "pca"
    components: int | None = 32  # principal components kept (null = all)
    whiten: bool = False         # also scale each component to unit variance (uses epsilon)


@PREPROCESS.option("whiten", "Whitening: decorrelate and scale to unit variance (PCA basis, or ZCA rotated back to image space).")
@dataclass
class WhitenSchema(ComponentsBase):
    name: str = "whiten"
    method: str = "zca"  # zca keeps the input shape (rotated back); pca outputs `components` values

    def __post_init__(self):
        super().__post_init__()
        check(self.method in ("pca", "zca"), "method", self.method, "one of pca, zca")
