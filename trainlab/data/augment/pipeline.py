"""The pipeline: the selected options built, ordered and run on a batch; and test-time views."""
import torch
import torch.nn.functional as F
from torch import Tensor

from trainlab.data.augment.base import Augmentation
from trainlab.data.augment.mixing import OneMixingPerBatch
from trainlab.data.augment.pixels import FusedPixelShift, PixelShift
from trainlab.errors import ConfigError
from trainlab.schemas.augment import AUGMENTS

# Geometric first (they move pixels that later steps then alter), photometric
# next, occlusion after that, and label mixing last so it blends images that
# are already fully augmented.
CANONICAL_ORDER = (
    "flip", "crop", "scale", "rotate", "translate",
    "color", "noise", "cutout",
    "mixup", "cutmix",
)
TTA_MODES = ("flip", "crop", "multicrop")


def _pad(x: Tensor, pad_h: int, pad_w: int, mode: str) -> Tensor:
    return F.pad(x, (pad_w, pad_w, pad_h, pad_h), mode="constant" if mode == "zeros" else mode)


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

def tta_views(x: Tensor, mode: str, pad: int = 2, multicrop=None) -> list[Tensor]:
    """Deterministic views of an eval batch (N, C, H, W), each the same shape as x.

    The caller averages the model's predicted probabilities over the views.
    "flip": the original and its horizontal mirror.
    "crop": the original (centre) and the four corner H x W windows of the
    batch zero-padded by `pad` pixels, i.e. shifted by (+-pad, +-pad).
    "multicrop": crops at one or more sizes, each resized back to H x W
    (`multicrop`: trainer.multicrop's sizes, corners, flip; see multicrop_views).
    Views keep the input size, so any model that takes x takes them too.
    """
    if mode not in TTA_MODES:
        raise ConfigError("tta", mode, f"choose one of {', '.join(TTA_MODES)}")
    if pad < 0:
        raise ConfigError("tta.pad", pad, "a pixel count >= 0")
    if x.dim() != 4:
        raise ConfigError("tta", mode, f"{mode} views need image input (N,C,H,W); got shape {tuple(x.shape)}")
    if mode == "flip":
        return [x, x.flip(-1)]
    if mode == "multicrop":
        if multicrop is None:
            from trainlab.schemas.trainer import MulticropSchema

            multicrop = MulticropSchema()
        return multicrop_views(x, multicrop.sizes, multicrop.corners, multicrop.flip)
    h, w = x.shape[-2:]
    padded = _pad(x, pad, pad, "zeros")
    corners = ((0, 0), (0, 2 * pad), (2 * pad, 0), (2 * pad, 2 * pad))
    return [x] + [padded[..., top:top + h, left:left + w] for top, left in corners]


def multicrop_views(x: Tensor, sizes, corners: bool = True, flip: bool = True) -> list[Tensor]:
    """The "10 crops with flips" recipe at one or more scales. For each size s < 1: the centre
    crop of side s*H x s*W (and, with `corners`, the four corner crops), each resized back to
    H x W; s = 1 is the whole image, one view. With `flip` every crop is also mirrored. So the
    view count is sum over sizes of (5 or 1, 1 for s = 1) x (2 or 1): 10 for the defaults."""
    from torchvision.transforms.v2 import functional as TF

    h, w = x.shape[-2:]
    views = []
    for size in sizes:
        if size >= 1:
            crops = [x]
        else:
            side = [max(1, round(size * h)), max(1, round(size * w))]
            crops = list(TF.five_crop(x, side)) if corners else [TF.center_crop(x, side)]
            crops = [TF.resize(c, [h, w], antialias=True) for c in crops]
        for crop in crops:
            views += [crop, crop.flip(-1)] if flip else [crop]
    return views
