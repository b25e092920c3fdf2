"""Batched data augmentation: each option transforms a whole batch on its device.

Why batched: per-sample transforms in DataLoader workers leave a GPU waiting on
Python. Here one call draws a parameter per sample and applies all of them with
a few tensor ops, so a batch that lives on the GPU stays there and the host
never waits on the device (no `.item()`, no Python loop over samples).

Randomness comes only from the `torch.Generator` passed in, never the global
RNG, so a run is reproducible from its seed and resumes exactly from the
generator state saved in its checkpoint. A generator on the batch's device is
fastest; a CPU generator also works (its draws are copied to the device).

Inputs are float images (N, C, H, W) with values in [0, 1], before
normalization; labels are class indices (N,). Mixing options (mixup, cutmix)
return soft targets (N, num_classes) whose rows sum to 1; every other option
hands the labels back untouched. Options that need spatial structure reject
other input shapes in `BatchAugment.check_input_shape`, before training.

Documented decisions:
- `p` is always the probability, per sample, that the transform is applied.
- mixup draws lambda ~ Beta(alpha, alpha) per *sample*, not per batch, so
  every sample gets its own draw like every other option here; the partner is
  a random permutation of the batch (a sample paired with itself is unmixed).
- cutmix draws its box area per sample, centres the box uniformly on the image
  (boxes may be clipped at the border) and weights labels by the area actually
  pasted.
- when both mixup and cutmix are selected, each batch uses one of them, chosen
  with probability 1/2 (decided on the device, without a host sync).
- `tta_views` mode "crop" gives five full-size views: the centre and the four
  corner windows of the zero-padded image, the extremes of what `crop` trains on.
"""
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from trainlab.errors import ConfigError, check
from trainlab.registry import Registry

AUGMENTS = Registry("augment")

# Geometric first (they move pixels that later steps then alter), photometric
# next, occlusion after that, and label mixing last so it blends images that
# are already fully augmented.
CANONICAL_ORDER = (
    "flip", "crop", "scale", "rotate", "translate",
    "color", "noise", "cutout",
    "mixup", "cutmix",
)
TTA_MODES = ("flip", "crop")


# ---------------------------------------------------------------- random draws
# All draws happen on the generator's device (a CPU generator cannot fill a
# CUDA tensor) and are then moved to the batch's device; when the two match
# the move is free. Draws stay float32 so probability comparisons are exact
# even when the images are half precision; values are cast where they meet x.

def _rand(g: torch.Generator, shape, device) -> Tensor:
    return torch.rand(shape, generator=g, device=g.device).to(device)


def _uniform(g: torch.Generator, n: int, device, low: float, high: float) -> Tensor:
    return low + (high - low) * _rand(g, (n,), device)


def _randint(g: torch.Generator, high: int, n: int, device) -> Tensor:
    return torch.randint(0, high, (n,), generator=g, device=g.device).to(device)


def _beta(g: torch.Generator, alpha: float, n: int, device) -> Tensor:
    """Beta(alpha, alpha) draws as G1 / (G1 + G2) from two Gamma(alpha) draws.

    torch.distributions.Beta only samples from the global RNG; the gamma sampler
    underneath it takes a generator. float64 keeps small alphas from
    underflowing both gammas to 0, which would give 0/0.
    """
    shape = torch.full((2, n), alpha, dtype=torch.float64, device=g.device)
    gamma = torch._standard_gamma(shape, generator=g)
    return (gamma[0] / (gamma[0] + gamma[1])).float().to(device)


def _per_sample(values: Tensor, x: Tensor) -> Tensor:
    """Shape (N,) values so they broadcast over the rest of x, in x's dtype."""
    return values.to(x.dtype).view(-1, *[1] * (x.dim() - 1))


# ------------------------------------------------------------ shared tensor ops

def _pad(x: Tensor, pad_h: int, pad_w: int, mode: str) -> Tensor:
    return F.pad(x, (pad_w, pad_w, pad_h, pad_h), mode="constant" if mode == "zeros" else mode)


# Flips, crops and translations only move whole pixels, and each moves rows and
# columns independently. So each is described by where every output row and
# column comes from (a "source map" per sample), consecutive ones compose by
# indexing one map with the next, and the batch is then moved with ONE gather.
# That gather runs on the raw uint8 images, before the float conversion:
# a quarter of the bytes, and no padded copy or flipped copy of the batch.
OUTSIDE = -1  # a source index meaning "outside the image": the pixel becomes 0


def _identity(n: int, size: int, device) -> Tensor:
    return torch.arange(size, device=device).expand(n, size)


def _flip_map(chosen: Tensor, size: int) -> Tensor:
    """(N, size) source indices: reversed for the chosen samples."""
    ahead = torch.arange(size, device=chosen.device)
    return torch.where(chosen[:, None], size - 1 - ahead, ahead)


def _shift_map(offset: Tensor, size: int, pad: int, mode: str) -> Tensor:
    """(N, size) source indices of a window starting `offset` pixels into the image padded by `pad`."""
    src = offset[:, None] + torch.arange(size, device=offset.device) - pad
    if mode == "reflect":  # mirror about the edge pixel, which is not repeated (torch's "reflect")
        src = src.abs()
        return torch.where(src > size - 1, 2 * (size - 1) - src, src)
    return torch.where((src < 0) | (src >= size), OUTSIDE, src)


def _compose(first: Tensor, then: Tensor) -> Tensor:
    """The map of applying `first` and then `then`: out[i] = in[first[then[i]]]."""
    picked = first.gather(1, then.clamp(min=0))
    return torch.where(then < 0, OUTSIDE, picked)


def _move_pixels(x: Tensor, rows: Tensor, cols: Tensor, may_fill: bool) -> Tensor:
    """out[n, c, i, j] = x[n, c, rows[n, i], cols[n, j]], 0 where either index is OUTSIDE."""
    n, c, h, w = x.shape
    flat = rows.clamp(min=0)[:, :, None] * w + cols.clamp(min=0)[:, None, :]  # (N, H, W)
    out = x.reshape(n, c, h * w).gather(2, flat.view(n, 1, h * w).expand(n, c, h * w)).view(n, c, h, w)
    if may_fill:
        inside = (rows >= 0)[:, :, None] & (cols >= 0)[:, None, :]
        out = torch.where(inside[:, None], out, torch.zeros((), dtype=x.dtype, device=x.device))
    return out


def _random_shift_maps(n: int, h: int, w: int, pad_h: int, pad_w: int, mode: str,
                       g: torch.Generator, device) -> tuple[Tensor, Tensor]:
    """Source maps of a random H x W window of the image padded by (pad_h, pad_w)."""
    top = _randint(g, 2 * pad_h + 1, n, device)
    left = _randint(g, 2 * pad_w + 1, n, device)
    return _shift_map(top, h, pad_h, mode), _shift_map(left, w, pad_w, mode)


def _warp(x: Tensor, theta: Tensor, padding_mode: str) -> Tensor:
    """Resample every image through its own 2x3 affine map (output -> input coords)."""
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)


def _box_mask(h: int, w: int, top: Tensor, bottom: Tensor, left: Tensor, right: Tensor) -> Tensor:
    """(N, h, w) bool, True inside each sample's box [top, bottom) x [left, right).

    Comparing coordinates instead of slicing lets every sample have its own box
    and clips boxes that reach past the border for free.
    """
    rows = torch.arange(h, device=top.device)[None, :, None]
    cols = torch.arange(w, device=top.device)[None, None, :]
    inside_rows = (rows >= top[:, None, None]) & (rows < bottom[:, None, None])
    inside_cols = (cols >= left[:, None, None]) & (cols < right[:, None, None])
    return inside_rows & inside_cols


# -------------------------------------------------------------- the interface

class Augmentation(ABC):
    """One batched transform; builders registered in AUGMENTS return these."""

    name = ""
    needs_image = False   # requires (N, C, H, W) input
    mixes_labels = False  # turns class indices into soft targets

    def check_input_shape(self, input_shape: tuple) -> None:
        """Fail before training if the dataset's samples cannot take this transform."""
        if self.needs_image and len(input_shape) != 3:
            raise ConfigError(
                "augment", self.name,
                f"{self.name} needs image input (N,C,H,W); dataset gives "
                f"(N,{','.join(str(d) for d in input_shape)})")

    @abstractmethod
    def __call__(self, x: Tensor, y: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Return a new (x, y); the inputs are never modified in place."""


class PixelShift(Augmentation):
    """An augmentation that only moves whole pixels, rows and columns independently.

    It draws source maps instead of touching pixels, so that BatchAugment can
    fuse a run of these into one gather (see `_move_pixels`); on its own it
    works on any dtype.
    """

    may_fill = False  # whether some output pixels can come from outside the image (zeros)

    @abstractmethod
    def source_maps(self, n: int, h: int, w: int, g: torch.Generator, device) -> tuple[Tensor, Tensor]:
        """Per-sample (N, H) row and (N, W) column sources; OUTSIDE for a zero pixel."""

    def __call__(self, x, y, generator):
        return FusedPixelShift([self])(x, y, generator)


class FusedPixelShift(Augmentation):
    """Consecutive PixelShift steps as one gather; draws happen in the steps' order."""

    def __init__(self, steps: list[PixelShift]):
        self.steps = steps
        self.name = "+".join(step.name for step in steps)
        self.may_fill = any(step.may_fill for step in steps)

    def __call__(self, x, y, generator):
        n, _, h, w = x.shape
        maps = [step.source_maps(n, h, w, generator, x.device) for step in self.steps]
        rows, cols = maps[-1]
        for first_rows, first_cols in reversed(maps[:-1]):
            rows, cols = _compose(first_rows, rows), _compose(first_cols, cols)
        return _move_pixels(x, rows, cols, self.may_fill), y


# ----------------------------------------------------------------- geometric

@dataclass
class FlipSchema:
    p: float = 0.5          # probability that a sample is flipped horizontally
    vertical: bool = False  # also flip vertically (with the same p, independently)

    def __post_init__(self):
        check(0.0 <= self.p <= 1.0, "p", self.p, "a probability in [0, 1]")


@AUGMENTS.register("flip", FlipSchema)
class Flip(PixelShift):
    name, needs_image = "flip", True

    def __init__(self, cfg: FlipSchema, num_classes: int):
        self.cfg = cfg

    def source_maps(self, n, h, w, g, device):
        cols = _flip_map(_rand(g, (n,), device) < self.cfg.p, w)
        rows = _flip_map(_rand(g, (n,), device) < self.cfg.p, h) if self.cfg.vertical else _identity(n, h, device)
        return rows, cols


@dataclass
class CropSchema:
    padding: int = 4              # pixels added on every side before cropping back to H x W
    padding_mode: str = "zeros"   # zeros | reflect (mirror the border pixels)

    def __post_init__(self):
        check(self.padding >= 0, "padding", self.padding, "a pixel count >= 0")
        check(self.padding_mode in ("zeros", "reflect"), "padding_mode", self.padding_mode,
              "one of zeros, reflect")


@AUGMENTS.register("crop", CropSchema)
class Crop(PixelShift):
    """Pad by `padding`, then cut an H x W window at a random offset per sample.

    Integer shifts copy pixels exactly; an interpolating warp would blur them.
    """

    name, needs_image = "crop", True

    def __init__(self, cfg: CropSchema, num_classes: int):
        self.cfg = cfg
        self.may_fill = cfg.padding_mode == "zeros" and cfg.padding > 0

    def check_input_shape(self, input_shape):
        super().check_input_shape(input_shape)
        h, w = input_shape[-2:]
        # reflection can only mirror pixels the image has
        if self.cfg.padding_mode == "reflect" and self.cfg.padding >= min(h, w):
            raise ConfigError("augment.crop.padding", self.cfg.padding,
                              f"reflect padding must be smaller than the image ({h}x{w})")

    def source_maps(self, n, h, w, g, device):
        return _random_shift_maps(n, h, w, self.cfg.padding, self.cfg.padding, self.cfg.padding_mode, g, device)


@dataclass
class ScaleSchema:
    min_area: float = 0.25                # smallest crop, as a fraction of the image area
    max_area: float = 1.0                 # largest crop, as a fraction of the image area
    min_ratio: float = 0.75               # narrowest crop, width / height
    max_ratio: float = 1.3333333333333333  # widest crop, width / height (4/3)

    def __post_init__(self):
        check(0.0 < self.min_area <= 1.0, "min_area", self.min_area, "a fraction in (0, 1]")
        check(self.min_area <= self.max_area <= 1.0, "max_area", self.max_area,
              f"a fraction in [min_area={self.min_area}, 1]")
        check(self.min_ratio > 0.0, "min_ratio", self.min_ratio, "a ratio > 0")
        check(self.max_ratio >= self.min_ratio, "max_ratio", self.max_ratio,
              f"a ratio >= min_ratio={self.min_ratio}")


@AUGMENTS.register("scale", ScaleSchema)
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
        area = _uniform(generator, n, dev, c.min_area, c.max_area)
        ratio = _uniform(generator, n, dev, math.log(c.min_ratio), math.log(c.max_ratio)).exp()
        # crop sides as fractions of the image sides, so that in pixels
        # width * height = area * H * W and width / height = ratio
        width = (area * ratio * h / w).sqrt().clamp(max=1.0)
        height = (area / ratio * w / h).sqrt().clamp(max=1.0)
        # centre anywhere that keeps the window inside the image ([-1, 1] coords)
        cx = (1.0 - width) * _uniform(generator, n, dev, -1.0, 1.0)
        cy = (1.0 - height) * _uniform(generator, n, dev, -1.0, 1.0)
        zero = torch.zeros_like(width)
        theta = torch.stack([torch.stack([width, zero, cx], -1),
                             torch.stack([zero, height, cy], -1)], 1)
        # the window is inside the image; "border" only keeps the half-pixel
        # rim that bilinear sampling touches from fading towards zero
        return _warp(x, theta, "border"), y


@dataclass
class RotateSchema:
    degrees: float = 15.0  # rotation drawn uniformly in [-degrees, +degrees] per sample

    def __post_init__(self):
        check(0.0 <= self.degrees <= 180.0, "degrees", self.degrees, "an angle in [0, 180]")


@AUGMENTS.register("rotate", RotateSchema)
class Rotate(Augmentation):
    """Rotation about the image centre; corners uncovered by it are filled with 0."""

    name, needs_image = "rotate", True

    def __init__(self, cfg: RotateSchema, num_classes: int):
        self.cfg = cfg

    def __call__(self, x, y, generator):
        n, _, h, w = x.shape
        angle = _uniform(generator, n, x.device, -self.cfg.degrees, self.cfg.degrees) * (math.pi / 180)
        cos, sin = angle.cos(), angle.sin()
        zero = torch.zeros_like(cos)
        # grid coordinates run over [-1, 1] on both axes whatever the image's
        # shape; the h/w factors rotate in pixel space so non-square images
        # are not sheared
        theta = torch.stack([torch.stack([cos, -sin * h / w, zero], -1),
                             torch.stack([sin * w / h, cos, zero], -1)], 1)
        return _warp(x, theta, "zeros"), y


@dataclass
class TranslateSchema:
    fraction: float = 0.1  # shift drawn uniformly in [-fraction, +fraction] of the size, per axis

    def __post_init__(self):
        check(0.0 <= self.fraction < 1.0, "fraction", self.fraction, "a fraction in [0, 1)")


@AUGMENTS.register("translate", TranslateSchema)
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
        return _random_shift_maps(n, h, w, pad_h, pad_w, "zeros", g, device)


# --------------------------------------------------------------- photometric

@dataclass
class ColorSchema:
    brightness: float = 0.2  # intensity factor drawn in [1 - brightness, 1 + brightness]
    contrast: float = 0.2    # contrast factor drawn in [1 - contrast, 1 + contrast]

    def __post_init__(self):
        check(0.0 <= self.brightness <= 1.0, "brightness", self.brightness, "a jitter in [0, 1]")
        check(0.0 <= self.contrast <= 1.0, "contrast", self.contrast, "a jitter in [0, 1]")


@AUGMENTS.register("color", ColorSchema)
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
        brightness = _uniform(generator, n, dev, 1.0 - c.brightness, 1.0 + c.brightness)
        contrast = _uniform(generator, n, dev, 1.0 - c.contrast, 1.0 + c.contrast)
        out = x * _per_sample(brightness, x)
        mean = out.mean(dim=tuple(range(1, x.dim())), keepdim=True)
        out = (out - mean) * _per_sample(contrast, x) + mean
        return out.clamp_(0.0, 1.0), y


@dataclass
class NoiseSchema:
    std: float = 0.05   # standard deviation of the added Gaussian noise, in input units
    clip: bool = False  # clamp to [0, 1] afterwards (only for [0, 1] pixel intensities)

    def __post_init__(self):
        check(self.std >= 0.0, "std", self.std, "a standard deviation >= 0")


@AUGMENTS.register("noise", NoiseSchema)
class Noise(Augmentation):
    """Additive Gaussian noise on any input shape (images or feature vectors)."""

    name = "noise"

    def __init__(self, cfg: NoiseSchema, num_classes: int):
        self.cfg = cfg

    def __call__(self, x, y, generator):
        noise = torch.randn(x.shape, generator=generator, device=generator.device, dtype=x.dtype)
        out = x + self.cfg.std * noise.to(x.device)
        return (out.clamp_(0.0, 1.0) if self.cfg.clip else out), y


@dataclass
class CutoutSchema:
    size: int = 8    # side of the zeroed square, in pixels
    p: float = 1.0   # probability that a sample gets a square

    def __post_init__(self):
        check(self.size >= 1, "size", self.size, "a pixel count >= 1")
        check(0.0 <= self.p <= 1.0, "p", self.p, "a probability in [0, 1]")


@AUGMENTS.register("cutout", CutoutSchema)
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
        size, dev = self.cfg.size, x.device
        top = _randint(generator, h, n, dev) - size // 2
        left = _randint(generator, w, n, dev) - size // 2
        mask = _box_mask(h, w, top, top + size, left, left + size)
        mask &= (_rand(generator, (n,), dev) < self.cfg.p)[:, None, None]
        return x.masked_fill(mask[:, None], 0.0), y


# -------------------------------------------------------------- label mixing

def _soft_targets(y: Tensor, num_classes: int) -> Tensor:
    if y.is_floating_point():  # already soft
        return y
    # scatter rather than F.one_hot: no range check, hence no host sync
    return torch.zeros(y.shape[0], num_classes, device=y.device).scatter_(1, y[:, None], 1.0)


class Mixing(Augmentation):
    """Blend each sample with a partner from a shuffled copy of the batch.

    Subclasses only say how much of its own sample each output keeps: per
    element (`keep_pixels`, broadcastable to x) and for the label (`keep_label`, (N,)).
    """

    mixes_labels = True

    def __init__(self, num_classes: int):
        self.num_classes = num_classes

    @abstractmethod
    def weights(self, x: Tensor, g: torch.Generator) -> tuple[Tensor, Tensor]:
        """(keep_pixels, keep_label) for this batch."""

    def __call__(self, x, y, generator):
        keep_pixels, keep_label = self.weights(x, generator)
        partner = torch.randperm(x.shape[0], generator=generator, device=generator.device).to(x.device)
        mixed_x = keep_pixels * x + (1 - keep_pixels) * x[partner]
        soft = _soft_targets(y, self.num_classes)
        keep = keep_label.to(soft.dtype)[:, None]
        return mixed_x, keep * soft + (1 - keep) * soft[partner]


@dataclass
class MixupSchema:
    alpha: float = 0.2  # Beta(alpha, alpha) concentration; small alpha keeps samples mostly whole

    def __post_init__(self):
        check(self.alpha > 0.0, "alpha", self.alpha, "a concentration > 0")


@AUGMENTS.register("mixup", MixupSchema)
class Mixup(Mixing):
    """x = lam * x + (1 - lam) * partner, lam ~ Beta(alpha, alpha) drawn per sample."""

    name = "mixup"

    def __init__(self, cfg: MixupSchema, num_classes: int):
        super().__init__(num_classes)
        self.cfg = cfg

    def weights(self, x, g):
        lam = _beta(g, self.cfg.alpha, x.shape[0], x.device)
        return _per_sample(lam, x), lam


@dataclass
class CutmixSchema:
    alpha: float = 1.0  # Beta(alpha, alpha) for the kept area; 1.0 = uniform, as in Yun et al.

    def __post_init__(self):
        check(self.alpha > 0.0, "alpha", self.alpha, "a concentration > 0")


@AUGMENTS.register("cutmix", CutmixSchema)
class Cutmix(Mixing):
    """Paste a box of the partner; the label weight is the area actually pasted.

    lam ~ Beta(alpha, alpha) per sample sets the box sides to sqrt(1 - lam) of
    the image's; the box centre is uniform on the image and the part outside
    is clipped, which is why labels follow the pasted mask, not lam.
    """

    name, needs_image = "cutmix", True

    def __init__(self, cfg: CutmixSchema, num_classes: int):
        super().__init__(num_classes)
        self.cfg = cfg

    def weights(self, x, g):
        n, _, h, w = x.shape
        dev = x.device
        side = (1.0 - _beta(g, self.cfg.alpha, n, dev)).sqrt()
        box_h, box_w = (side * h).round().long(), (side * w).round().long()
        top = _randint(g, h, n, dev) - box_h // 2
        left = _randint(g, w, n, dev) - box_w // 2
        pasted = _box_mask(h, w, top, top + box_h, left, left + box_w)
        keep_label = 1.0 - pasted.float().mean(dim=(1, 2))
        return (~pasted)[:, None].to(x.dtype), keep_label


class OneMixingPerBatch(Mixing):
    """Several mixing options selected: each batch uses one, chosen uniformly.

    Every option draws its weights and the choice is made on the device with
    index_select (a Python `if` on a device coin would sync with the host).
    Mixing ops are cheap next to a forward pass, so the unused draw costs little.
    """

    def __init__(self, options: list[Mixing], num_classes: int):
        super().__init__(num_classes)
        self.options = options
        self.name = "+".join(o.name for o in options)
        self.needs_image = any(o.needs_image for o in options)

    def check_input_shape(self, input_shape):
        for option in self.options:
            option.check_input_shape(input_shape)

    def weights(self, x, g):
        drawn = [option.weights(x, g) for option in self.options]
        pick = _randint(g, len(self.options), 1, x.device)
        pixels = torch.stack(torch.broadcast_tensors(*[p for p, _ in drawn]))
        labels = torch.stack([lab for _, lab in drawn])
        return pixels.index_select(0, pick)[0], labels.index_select(0, pick)[0]


# ------------------------------------------------------------------ pipeline

def _position(aug: Augmentation) -> tuple:
    # options registered by users (not in the canonical list) run after the
    # built-in ones of their kind, in name order, with mixing always last
    known = aug.name in CANONICAL_ORDER
    return (aug.mixes_labels, CANONICAL_ORDER.index(aug.name) if known else len(CANONICAL_ORDER), aug.name)


def _unit_float(x: Tensor) -> Tensor:
    """uint8 images as float32 in [0, 1]; float images (any precision) unchanged."""
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x


def _fuse_pixel_shifts(steps: list[Augmentation]) -> list[Augmentation]:
    stages: list[Augmentation] = []
    for step in steps:
        if isinstance(step, PixelShift):
            if stages and isinstance(stages[-1], FusedPixelShift):
                stages[-1] = FusedPixelShift(stages[-1].steps + [step])
            else:
                stages.append(FusedPixelShift([step]))
        else:
            stages.append(step)
    return stages


class BatchAugment:
    """The selected options, built and run in the canonical order."""

    def __init__(self, selected: dict[str, object], num_classes: int):
        built = sorted((AUGMENTS[name].build(cfg, num_classes) for name, cfg in selected.items()),
                       key=_position)
        plain = [a for a in built if not a.mixes_labels]
        mixing = [a for a in built if a.mixes_labels]
        if len(mixing) > 1:
            mixing = [OneMixingPerBatch(mixing, num_classes)]
        self.steps: list[Augmentation] = plain + mixing
        self.stages = _fuse_pixel_shifts(self.steps)  # what runs: consecutive pixel shifts as one gather

    @property
    def mixes_labels(self) -> bool:
        return any(step.mixes_labels for step in self.steps)

    def check_input_shape(self, input_shape: tuple) -> None:
        """Raise ConfigError if a selected option cannot handle samples of this shape (no batch dim)."""
        for step in self.steps:
            step.check_input_shape(tuple(input_shape))

    def __call__(self, x: Tensor, y: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Augment a batch; uint8 images come back as [0, 1] floats.

        Pixel shifts run on whatever dtype arrives (uint8 is cheapest to move);
        the first stage that computes with pixel values gets floats.
        """
        for stage in self.stages:
            if not isinstance(stage, FusedPixelShift):
                x = _unit_float(x)
            x, y = stage(x, y, generator)
        return _unit_float(x), y

    def __repr__(self) -> str:
        return f"BatchAugment({', '.join(step.name for step in self.steps) or 'none'})"


# ------------------------------------------------------ test-time augmentation

def tta_views(x: Tensor, mode: str, pad: int = 2) -> list[Tensor]:
    """Deterministic views of an eval batch (N, C, H, W), each the same shape as x.

    The caller averages the model's predicted probabilities over the views.
    "flip": the original and its horizontal mirror.
    "crop": the original (centre) and the four corner H x W windows of the
    batch zero-padded by `pad` pixels, i.e. shifted by (+-pad, +-pad). Views
    keep the input size, so any model that takes x takes them too.
    """
    if mode not in TTA_MODES:
        raise ConfigError("tta", mode, f"choose one of {', '.join(TTA_MODES)}")
    if pad < 0:
        raise ConfigError("tta.pad", pad, "a pixel count >= 0")
    if x.dim() != 4:
        raise ConfigError("tta", mode, f"{mode} views need image input (N,C,H,W); got shape {tuple(x.shape)}")
    if mode == "flip":
        return [x, x.flip(-1)]
    h, w = x.shape[-2:]
    padded = _pad(x, pad, pad, "zeros")
    corners = ((0, 0), (0, 2 * pad), (2 * pad, 0), (2 * pad, 2 * pad))
    return [x] + [padded[..., top:top + h, left:left + w] for top, left in corners]
