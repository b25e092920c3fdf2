"""augment=: one schema per option (the batched transforms are in trainlab.data.augment).

Options combine (`augment=[flip,crop]`), so each option's keys live under its own
name (`augment.crop.padding=2`) and no schema has a `name` field.
"""
from dataclasses import dataclass

from trainlab.errors import check
from trainlab.registry import Registry

AUGMENTS = Registry("augment", builders="trainlab.data.augment")


# ----------------------------------------------------------------- geometric

@AUGMENTS.option("flip", "Random horizontal flip, a fresh draw per sample.")
@dataclass
class FlipSchema:
    p: float = 0.5          # probability that a sample is flipped horizontally
    vertical: bool = False  # also flip upside down (same p, drawn independently)

    def __post_init__(self):
        check(0.0 <= self.p <= 1.0, "p", self.p, "a probability in [0, 1]")


@AUGMENTS.option("crop", "Pad, then crop back to the original size at a random offset per sample.")
@dataclass
class CropSchema:
    padding: int | None = None     # pixels added on every side before cropping back to H x W (null: padding_fraction)
    padding_fraction: float = 0.125  # with padding null: this fraction of the image side, at least 1 px (4 on 32x32, 1 on 8x8)
    padding_mode: str = "zeros"    # zeros | reflect (mirror the border pixels)

    def __post_init__(self):
        check(self.padding is None or self.padding >= 0, "padding", self.padding, "a pixel count >= 0 or null")
        check(0.0 <= self.padding_fraction <= 0.5, "padding_fraction", self.padding_fraction, "a fraction in [0, 0.5]")
        check(self.padding_mode in ("zeros", "reflect"), "padding_mode", self.padding_mode,
              "one of zeros, reflect")


@AUGMENTS.option("scale", "Random resized crop: a window of random area and aspect, stretched back to full size.")
@dataclass
class ScaleSchema:
    min_area: float = 0.25                 # smallest window, as a fraction of the image area
    max_area: float = 1.0                  # largest window, as a fraction of the image area
    min_ratio: float = 0.75                # narrowest window, width / height
    max_ratio: float = 1.3333333333333333  # widest window, width / height (4/3)

    def __post_init__(self):
        check(0.0 < self.min_area <= 1.0, "min_area", self.min_area, "a fraction in (0, 1]")
        check(self.min_area <= self.max_area <= 1.0, "max_area", self.max_area,
              f"a fraction in [min_area={self.min_area}, 1]")
        check(self.min_ratio > 0.0, "min_ratio", self.min_ratio, "a ratio > 0")
        check(self.max_ratio >= self.min_ratio, "max_ratio", self.max_ratio,
              f"a ratio >= min_ratio={self.min_ratio}")


@AUGMENTS.option("rotate", "Random rotation about the centre; uncovered corners become 0.")
@dataclass
class RotateSchema:
    degrees: float = 15.0  # angle drawn uniformly in [-degrees, +degrees] per sample

    def __post_init__(self):
        check(0.0 <= self.degrees <= 180.0, "degrees", self.degrees, "an angle in [0, 180]")


@AUGMENTS.option("translate", "Random whole-pixel shift per axis with zero fill.")
@dataclass
class TranslateSchema:
    fraction: float = 0.1  # shift drawn uniformly in [-fraction, +fraction] of the image height / width

    def __post_init__(self):
        check(0.0 <= self.fraction < 1.0, "fraction", self.fraction, "a fraction in [0, 1)")


# --------------------------------------------------------------- photometric

@AUGMENTS.option("color", "Brightness then contrast jitter, one pair of factors per sample, clamped to [0, 1].")
@dataclass
class ColorSchema:
    brightness: float = 0.2  # intensity factor drawn in [1 - brightness, 1 + brightness]
    contrast: float = 0.2    # contrast factor drawn in [1 - contrast, 1 + contrast]

    def __post_init__(self):
        check(0.0 <= self.brightness <= 1.0, "brightness", self.brightness, "a jitter in [0, 1]")
        check(0.0 <= self.contrast <= 1.0, "contrast", self.contrast, "a jitter in [0, 1]")


@AUGMENTS.option("noise", "Additive Gaussian noise; works on images and on flat feature vectors.")
@dataclass
class NoiseSchema:
    std: float = 0.05   # standard deviation, in input units (pixel intensities in [0, 1])
    clip: bool = False  # clamp to [0, 1] afterwards (only meaningful for images)

    def __post_init__(self):
        check(self.std >= 0.0, "std", self.std, "a standard deviation >= 0")


@AUGMENTS.option("cutout", "Zero a square at a random centre per sample (DeVries & Taylor, 2017).")
@dataclass
class CutoutSchema:
    size: int | None = None     # side of the zeroed square, in pixels (null: size_fraction)
    size_fraction: float = 0.25  # with size null: this fraction of the image side, at least 1 px (8 on 32x32, 2 on 8x8)
    p: float = 1.0               # probability that a sample gets a square

    def __post_init__(self):
        check(self.size is None or self.size >= 1, "size", self.size, "a pixel count >= 1 or null")
        check(0.0 < self.size_fraction <= 1.0, "size_fraction", self.size_fraction, "a fraction in (0, 1]")
        check(0.0 <= self.p <= 1.0, "p", self.p, "a probability in [0, 1]")


# -------------------------------------------------------------- label mixing

@AUGMENTS.option("mixup", "Blend each sample and its label with a shuffled partner (Zhang et al., 2018).")
@dataclass
class MixupSchema:
    """lambda ~ Beta(alpha, alpha) is drawn per sample."""

    alpha: float = 0.2  # Beta(alpha, alpha) concentration; small values keep samples mostly whole

    def __post_init__(self):
        check(self.alpha > 0.0, "alpha", self.alpha, "a concentration > 0")


@AUGMENTS.option("cutmix", "Paste a box from a shuffled partner; labels weighted by the pasted area (Yun et al., 2019).")
@dataclass
class CutmixSchema:
    """With mixup also selected, each batch uses one of the two, chosen with probability 1/2."""

    alpha: float = 1.0  # Beta(alpha, alpha) concentration for the kept area; 1.0 draws it uniformly

    def __post_init__(self):
        check(self.alpha > 0.0, "alpha", self.alpha, "a concentration > 0")
