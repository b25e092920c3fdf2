"""The arithmetic of one training step, for `trainer.threads=auto`'s choice of thread count.

Counted by hand from the shapes of the model's linear and convolution layers seen in one
forward pass of a single example (eval mode, no gradient: no batch-norm statistics move and no
random number is drawn, so the run's results are untouched). torch.utils.flop_counter would count
every operator, but its first use costs about 1.7 s, a third of a small run's whole process; the
layers counted here carry nearly all of a step's arithmetic.
"""
from __future__ import annotations

import math

import torch
from torch import nn

# A training step is the forward pass and a backward pass that costs about twice as much
# (the gradients of the inputs and of the weights).
FORWARD_AND_BACKWARD = 3


def _forward_flops(module: nn.Module, out: torch.Tensor) -> int:
    """Floating-point operations (a multiply-add is two) of one layer's forward pass."""
    if isinstance(module, nn.Linear):
        return 2 * module.in_features * out.numel()
    if isinstance(module, nn.modules.conv._ConvNd):
        per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
        return 2 * per_output * out.numel()
    return 0


@torch.no_grad()
def step_flops(model: nn.Module, example: torch.Tensor, batch_size: int) -> int:
    """Operations of one training step of `batch_size` examples shaped like `example` (one model
    input, preprocessed, with its batch dimension of 1)."""
    total = 0

    def count(module, _inputs, out):
        nonlocal total
        if isinstance(out, torch.Tensor):
            total += _forward_flops(module, out)

    handles = [m.register_forward_hook(count) for m in model.modules()
               if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))]
    was_training = model.training
    try:
        model.eval()
        model(example)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return FORWARD_AND_BACKWARD * total * batch_size
