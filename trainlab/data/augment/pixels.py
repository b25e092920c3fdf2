"""Pixel maps: augmentations that only move whole pixels, fused into one gather.

Flips, crops and translations only move whole pixels, and each moves rows and
columns independently. So each is described by where every output row and
column comes from (a "source map" per sample), consecutive ones compose by
indexing one map with the next, and the batch is then moved with ONE gather.
That gather runs on the raw uint8 images, before the float conversion:
a quarter of the bytes, and no padded copy or flipped copy of the batch.
"""
from abc import abstractmethod

import torch
from torch import Tensor

from trainlab.data.augment.base import Augmentation, randint

OUTSIDE = -1  # a source index meaning "outside the image": the pixel becomes 0


def identity_map(n: int, size: int, device) -> Tensor:
    return torch.arange(size, device=device).expand(n, size)


def flip_map(chosen: Tensor, size: int) -> Tensor:
    """(N, size) source indices: reversed for the chosen samples."""
    ahead = torch.arange(size, device=chosen.device)
    return torch.where(chosen[:, None], size - 1 - ahead, ahead)


def shift_map(offset: Tensor, size: int, pad: int, mode: str) -> Tensor:
    """(N, size) source indices of a window starting `offset` pixels into the image padded by `pad`."""
    src = offset[:, None] + torch.arange(size, device=offset.device) - pad
    if mode == "reflect":  # mirror about the edge pixel, which is not repeated (torch's "reflect")
        src = src.abs()
        return torch.where(src > size - 1, 2 * (size - 1) - src, src)
    return torch.where((src < 0) | (src >= size), OUTSIDE, src)


def compose(first: Tensor, then: Tensor) -> Tensor:
    """The map of applying `first` and then `then`: out[i] = in[first[then[i]]]."""
    picked = first.gather(1, then.clamp(min=0))
    return torch.where(then < 0, OUTSIDE, picked)


def move_pixels(x: Tensor, rows: Tensor, cols: Tensor, may_fill: bool) -> Tensor:
    """out[n, c, i, j] = x[n, c, rows[n, i], cols[n, j]], 0 where either index is OUTSIDE."""
    n, c, h, w = x.shape
    flat = rows.clamp(min=0)[:, :, None] * w + cols.clamp(min=0)[:, None, :]  # (N, H, W)
    out = x.reshape(n, c, h * w).gather(2, flat.view(n, 1, h * w).expand(n, c, h * w)).view(n, c, h, w)
    if may_fill:
        inside = (rows >= 0)[:, :, None] & (cols >= 0)[:, None, :]
        out = torch.where(inside[:, None], out, torch.zeros((), dtype=x.dtype, device=x.device))
    return out


def random_shift_maps(n: int, h: int, w: int, pad_h: int, pad_w: int, mode: str,
                      g: torch.Generator, device) -> tuple[Tensor, Tensor]:
    """Source maps of a random H x W window of the image padded by (pad_h, pad_w)."""
    top = randint(g, 2 * pad_h + 1, n, device)
    left = randint(g, 2 * pad_w + 1, n, device)
    return shift_map(top, h, pad_h, mode), shift_map(left, w, pad_w, mode)


class PixelShift(Augmentation):
    """An augmentation that only moves whole pixels, rows and columns independently.

    It draws source maps instead of touching pixels, so that BatchAugment can
    fuse a run of these into one gather (see `move_pixels`); on its own it
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
            rows, cols = compose(first_rows, rows), compose(first_cols, cols)
        return move_pixels(x, rows, cols, self.may_fill), y
