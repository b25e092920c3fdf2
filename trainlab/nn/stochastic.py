"""Layers that draw random numbers in training: stochastic depth and fractional max pooling.

Both draw from torch's global generator, like dropout: the run seeds it and checkpoints/last.pt
saves and restores it (CPU and CUDA states, one per rank), so a resumed run draws the same
masks and pooling regions as an uninterrupted one. Both are deterministic in eval mode.
"""
import torch
import torch.nn.functional as F
from torch import nn

from trainlab.errors import ConfigError


def linear_depth_rule(p: float, blocks: int) -> list[float]:
    """Drop probability of residual block l = 1..L: p * l / L (Huang et al. 2016), the last one p."""
    return [p * (l + 1) / blocks for l in range(blocks)]


class BranchDrop(nn.Module):
    """Drops a residual branch per example with probability p in training, scaling kept branches
    by 1/(1-p) (torchvision.ops.stochastic_depth, "row" mode); the identity in eval mode. It has no
    parameters or buffers, so adding it leaves a model's state_dict (and its checkpoints) unchanged."""

    def __init__(self, p: float):
        super().__init__()
        from torchvision.ops import stochastic_depth  # torchvision is imported only by runs that use it

        self.p, self._drop = p, stochastic_depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._drop(x, self.p, "row", self.training)

    def extra_repr(self) -> str:
        return f"p={self.p:.4g}"

    def after_branch(self, module, inputs, output):
        """A forward hook for the last layer of a residual branch that cannot be edited (torchvision's
        blocks add the shortcut inside their forward). A bound method of this child module, so a
        deepcopy of the block (EMA, Polyak averaging) calls the copy's own module and its eval mode."""
        return self(output)


def add_stochastic_depth(net: nn.Module, p: float) -> int:
    """Give every torchvision ResNet block (BasicBlock, Bottleneck) a BranchDrop after the branch's
    last batch norm, following the linear depth rule; returns the number of blocks."""
    from torchvision.models.resnet import BasicBlock, Bottleneck

    blocks = [m for m in net.modules() if isinstance(m, (BasicBlock, Bottleneck))]
    for block, p_l in zip(blocks, linear_depth_rule(p, len(blocks))):
        block.stochastic_depth = BranchDrop(p_l)
        last_norm = block.bn3 if isinstance(block, Bottleneck) else block.bn2
        last_norm.register_forward_hook(block.stochastic_depth.after_branch)
    return len(blocks)


def check_stochastic_depth(model: nn.Module, arch: str) -> None:
    """An architecture that ignored regularizer=stochastic_depth (one without residual blocks,
    e.g. a plugin's) is refused rather than trained without it."""
    if not any(isinstance(m, BranchDrop) for m in model.modules()):
        raise ConfigError("regularizer", "stochastic_depth",
                          f"an architecture with residual blocks (arch=resnet, or arch=torchvision with a ResNet); "
                          f"arch={arch} has none")


class FractionalMaxPool(nn.FractionalMaxPool2d):
    """Fractional max pooling (Graham 2014): 2x2 max over pseudo-random regions that shrink the map by
    `output_ratio`, a fraction such as 1/sqrt(2) rather than max pooling's 1/2.

    In training the regions are drawn per example and channel from torch's global generator (as
    nn.FractionalMaxPool2d does), so resume stays exact. torch draws them in eval mode too, which
    would make val/test metrics random and move the training stream at every evaluation; here eval
    mode uses one fixed draw (u = 0.5 for every map) instead."""

    def __init__(self, output_ratio: float):
        super().__init__(kernel_size=2, output_ratio=output_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return super().forward(x)
        n = x.shape[0] if x.dim() == 4 else 1
        fixed = torch.full((n, x.shape[-3], 2), 0.5, dtype=x.dtype, device=x.device)
        return F.fractional_max_pool2d(x, self.kernel_size, self.output_size, self.output_ratio,
                                       self.return_indices, _random_samples=fixed)


def fractional_size(size: int, ratio: float) -> int:
    """The output side torch gives an input side `size` (it truncates size * ratio)."""
    return int(size * ratio)
