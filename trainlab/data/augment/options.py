"""The per-sample options: geometric (flip, crop, scale, rotate, translate), photometric
(color, noise) and occlusion (cutout). Label mixing is in trainlab.data.augment.mixing.

Each class is the builder of its option: AUGMENTS builds it as Option(cfg, num_classes).
Inputs are float images (N, C, H, W) in [0, 1]; pixel shifts (flip, crop, translate)
take any dtype, as BatchAugment fuses them into one gather on the raw images.
"""
import math

import torch
import torch.nn.functional as F
from torch import Tensor

from trainlab.data.augment.base import Augmentation, box_mask, per_sample, rand, randint, uniform
from trainlab.data.augment.pixels import PixelShift, flip_map, identity_map, random_shift_maps
from trainlab.errors import ConfigError
from trainlab.schemas.augment import (AUGMENTS, ColorSchema, CropSchema, CutoutSchema, FlipSchema, NoiseSchema,
                                      RotateSchema, ScaleSchema, TranslateSchema)


def _warp(x: Tensor, theta: Tensor, padding_mode: str) -> Tensor:
    """Resample every image through its own 2x3 affine map (output -> input coords)."""
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)


# ----------------------------------------------------------------- geometric

@AUGMENTS.builder("flip")
class Flip(PixelShift):
    name, needs_image = "flip", True

    def __init__(self, cfg: FlipSchema, num_classes: int):
        self.cfg = cfg

    def source_maps(self, n, h, w, g, device):
        cols = flip_map(rand(g, (n,), device) < self.cfg.p, w)
        rows = flip_map(rand(g, (n,), device) < self.cfg.p, h) if self.cfg.vertical else identity_map(n, h, device)
        return rows, cols


@AUGMENTS.builder("crop")
class Crop(PixelShift):
    """Pad by `padding`, then cut an H x W window at a random offset per sample.

    Integer shifts copy pixels exactly; an interpolating warp would blur them.
    """

    name, needs_image = "crop", True

    def __init__(self, cfg: CropSchema, num_classes: int):
        self.cfg = cfg
        self.may_fill = cfg.padding_mode == "zeros" and (cfg.padding is None or cfg.padding > 0)

    def padding(self, h: int, w: int) -> int:
        """The configured pixels, or a fraction of the side: 4 px of padding on an 8x8 digit leaves
        half the digit outside the crop, the same fraction as 1 px there is 4 px on 32x32."""
        if self.cfg.padding is not None:
            return self.cfg.padding
        return max(1, round(self.cfg.padding_fraction * min(h, w))) if self.cfg.padding_fraction > 0 else 0

    def check_input_shape(self, input_shape):
        super().check_input_shape(input_shape)
        h, w = input_shape[-2:]
        # reflection can only mirror pixels the image has
        if self.cfg.padding_mode == "reflect" and self.padding(h, w) >= min(h, w):
            raise ConfigError("augment.crop.padding", self.padding(h, w),
                              f"reflect padding must be smaller than the image ({h}x{w})")

    def source_maps(self, n, h, w, g, device):
        pad = self.padding(h, w)
        return random_shift_maps(n, h, w, pad, pad, self.cfg.padding_mode, g, device)


@AUGMENTS.builder("scale")
class Scale(Augmentation):
    """Random resized crop: a random-area, random-aspect window stretched back to H x W.

    A side that would exceed the image is clipped to it (so that crop's area is
    smaller than drawn) instead of redrawing, which would need a data-dependent loop.
    """

    name, needs_image = "scale", True

    def __init__(self, cfg: ScaleSchema, num_classes: int):
        self.cfg = cfg

    def __call__(self, x, y, generator):
        n, _, h, w = x.shape
        c, dev = self.cfg, x.device
        area = uniform(generator, n, dev, c.min_area, c.max_area)
        ratio = uniform(generator, n, dev, math.log(c.min_ratio), math.log(c.max_ratio)).exp()
        # crop sides as fractions of the image sides, so that in pixels
        # width * height = area * H * W and width / height = ratio
        width = (area * ratio * h / w).sqrt().clamp(max=1.0)
        height = (area / ratio * w / h).sqrt().clamp(max=1.0)
        # centre anywhere that keeps the window inside the image ([-1, 1] coords)
        cx = (1.0 - width) * uniform(generator, n, dev, -1.0, 1.0)
        cy = (1.0 - height) * uniform(generator, n, dev, -1.0, 1.0)
        zero = torch.zeros_like(width)
        theta = torch.stack([torch.stack([width, zero, cx], -1),
                             torch.stack([zero, height, cy], -1)], 1)
        # the window is inside the image; "border" only keeps the half-pixel
        # rim that bilinear sampling touches from fading towards zero
        return _warp(x, theta, "border"), y


@AUGMENTS.builder("rotate")
class Rotate(Augmentation):
    """Rotation about the image centre; corners uncovered by it are filled with 0."""

    name, needs_image = "rotate", True

    def __init__(self, cfg: RotateSchema, num_classes: int):
        self.cfg = cfg

    def __call__(self, x, y, generator):
        n, _, h, w = x.shape
        angle = uniform(generator, n, x.device, -self.cfg.degrees, self.cfg.degrees) * (math.pi / 180)
        cos, sin = angle.cos(), angle.sin()
        zero = torch.zeros_like(cos)
        # grid coordinates run over [-1, 1] on both axes whatever the image's
        # shape; the h/w factors rotate in pixel space so non-square images
        # are not sheared
        theta = torch.stack([torch.stack([cos, -sin * h / w, zero], -1),
                             torch.stack([sin * w / h, cos, zero], -1)], 1)
        return _warp(x, theta, "zeros"), y


@AUGMENTS.builder("translate")
class Translate(PixelShift):
    """Shift by whole pixels (up to fraction * size, rounded) with zero fill.

    Unlike `crop`, the range scales with the image, so one setting suits 8x8
    digits and 32x32 CIFAR alike.
    """

    name, needs_image, may_fill = "translate", True, True

    def __init__(self, cfg: TranslateSchema, num_classes: int):
        self.cfg = cfg

    def source_maps(self, n, h, w, g, device):
        pad_h, pad_w = round(self.cfg.fraction * h), round(self.cfg.fraction * w)
        return random_shift_maps(n, h, w, pad_h, pad_w, "zeros", g, device)


# --------------------------------------------------------------- photometric

@AUGMENTS.builder("color")
class Color(Augmentation):
    """Brightness then contrast jitter, one factor pair per sample, clamped to [0, 1].

    Contrast scales each sample's deviation from its own mean over all channels
    and pixels, so the option also works on flattened images.
    """

    name = "color"

    def __init__(self, cfg: ColorSchema, num_classes: int):
        self.cfg = cfg

    def __call__(self, x, y, generator):
        n, dev, c = x.shape[0], x.device, self.cfg
        brightness = uniform(generator, n, dev, 1.0 - c.brightness, 1.0 + c.brightness)
        contrast = uniform(generator, n, dev, 1.0 - c.contrast, 1.0 + c.contrast)
        out = x * per_sample(brightness, x)
        mean = out.mean(dim=tuple(range(1, x.dim())), keepdim=True)
        out = (out - mean) * per_sample(contrast, x) + mean
        return out.clamp_(0.0, 1.0), y


@AUGMENTS.builder("noise")
class Noise(Augmentation):
    """Additive Gaussian noise on any input shape (images or feature vectors)."""

    name = "noise"

    def __init__(self, cfg: NoiseSchema, num_classes: int):
        self.cfg = cfg

    def __call__(self, x, y, generator):
        noise = torch.randn(x.shape, generator=generator, device=generator.device, dtype=x.dtype)
        out = x + self.cfg.std * noise.to(x.device)
        return (out.clamp_(0.0, 1.0) if self.cfg.clip else out), y


@AUGMENTS.builder("cutout")
class Cutout(Augmentation):
    """Zero a size x size square centred on a uniformly drawn pixel.

    Centres near the border leave part of the square outside the image, as in
    DeVries & Taylor (2017), so edges are occluded as often as the middle.
    """

    name, needs_image = "cutout", True

    def __init__(self, cfg: CutoutSchema, num_classes: int):
        self.cfg = cfg

    def __call__(self, x, y, generator):
        n, _, h, w = x.shape
        # the configured pixels, or a fraction of the side (8 px on 32x32 is 2 px on 8x8)
        size = self.cfg.size if self.cfg.size is not None else max(1, round(self.cfg.size_fraction * min(h, w)))
        dev = x.device
        top = randint(generator, h, n, dev) - size // 2
        left = randint(generator, w, n, dev) - size // 2
        mask = box_mask(h, w, top, top + size, left, left + size)
        mask &= (rand(generator, (n,), dev) < self.cfg.p)[:, None, None]
        return x.masked_fill(mask[:, None], 0.0), y
