"""Batching of device-resident tensors by indexing with a seeded permutation.

No DataLoader and no per-sample Python: one `randperm` per epoch on the
training device and one gather per batch. The permutation generator is the
data-order state a checkpoint saves.
"""
import torch


def epoch_batches(n: int, batch_size: int, generator: torch.Generator, shuffle: bool = True):
    """Index tensors for one epoch. The last partial batch is dropped when
    there is more than one batch, so every step sees `batch_size` examples
    (batch norm on a batch of 1 would fail)."""
    device = generator.device
    order = torch.randperm(n, generator=generator, device=device) if shuffle else torch.arange(n, device=device)
    full = n // batch_size
    if full == 0:
        return [order]
    return list(order[: full * batch_size].view(full, batch_size))


def steps_per_epoch(n: int, batch_size: int) -> int:
    return max(1, n // batch_size)


def eval_batches(n: int, batch_size: int, device):
    """Contiguous slices covering every example, for evaluation."""
    return [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
