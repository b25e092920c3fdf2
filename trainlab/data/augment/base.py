"""What every augmentation shares: the seeded random draws, the box mask, and the interface.

Randomness comes only from the `torch.Generator` passed in, never the global RNG,
so a run is reproducible from its seed and resumes exactly from the generator
state saved in its checkpoint. Every option draws through these helpers, in a
fixed order per batch: changing that order changes every seeded run.
"""
from abc import ABC, abstractmethod

import torch
from torch import Tensor

from trainlab.errors import ConfigError

# ---------------------------------------------------------------- random draws
# All draws happen on the generator's device (a CPU generator cannot fill a
# CUDA tensor) and are then moved to the batch's device; when the two match
# the move is free. Draws stay float32 so probability comparisons are exact
# even when the images are half precision; values are cast where they meet x.

def rand(g: torch.Generator, shape, device) -> Tensor:
    return torch.rand(shape, generator=g, device=g.device).to(device)


def uniform(g: torch.Generator, n: int, device, low: float, high: float) -> Tensor:
    return low + (high - low) * rand(g, (n,), device)


def randint(g: torch.Generator, high: int, n: int, device) -> Tensor:
    return torch.randint(0, high, (n,), generator=g, device=g.device).to(device)


def beta(g: torch.Generator, alpha: float, n: int, device) -> Tensor:
    """Beta(alpha, alpha) draws as G1 / (G1 + G2) from two Gamma(alpha) draws.

    torch.distributions.Beta only samples from the global RNG; the gamma sampler
    underneath it takes a generator. float64 keeps small alphas from
    underflowing both gammas to 0, which would give 0/0.
    """
    shape = torch.full((2, n), alpha, dtype=torch.float64, device=g.device)
    gamma = torch._standard_gamma(shape, generator=g)
    return (gamma[0] / (gamma[0] + gamma[1])).float().to(device)


def per_sample(values: Tensor, x: Tensor) -> Tensor:
    """Shape (N,) values so they broadcast over the rest of x, in x's dtype."""
    return values.to(x.dtype).view(-1, *[1] * (x.dim() - 1))


def box_mask(h: int, w: int, top: Tensor, bottom: Tensor, left: Tensor, right: Tensor) -> Tensor:
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
