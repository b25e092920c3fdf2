"""Which examples make each batch, and how batches of resident tensors are gathered.

The data order is one `randperm` per epoch from the run's shuffle generator
(the data-order state a checkpoint saves), cut into global batches that every
process shares; each process takes its own slice. Both ways of reading the
data follow that plan: `ResidentBatches` gathers from tensors by index (no
DataLoader, no per-sample Python), `trainlab.data.loader.LoaderBatches` hands
the same index batches to a DataLoader.
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


def rank_batches(n: int, batch_size: int, world: int, rank: int, generator: torch.Generator) -> list[torch.Tensor]:
    """This process's index batches for one epoch: every rank draws the same permutation of
    global batches (`batch_size * world` examples) and takes slice `rank` of each."""
    batches = epoch_batches(n, batch_size * world, generator)
    if world == 1:
        return batches
    lo = rank * batch_size
    return [b[lo:lo + batch_size] for b in batches]


def steps_per_epoch(n: int, batch_size: int) -> int:
    return max(1, n // batch_size)


def eval_batches(n: int, batch_size: int):
    """Contiguous slices covering every example, for evaluation."""
    return [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


class ResidentBatches:
    """Batches gathered by indexing whole-split tensors: on the training device (the fast
    path), or in pinned host memory (data_placement=host) with each batch copied over."""

    def __init__(self, train, device: torch.device, eval_batch_size: int):
        self.train_split, self.device, self.eval_batch_size = train, device, eval_batch_size

    def to_device(self, t: torch.Tensor) -> torch.Tensor:
        return t if t.device == self.device else t.to(self.device, non_blocking=True)

    def train(self, batches: list[torch.Tensor], start: int = 0):
        x, y = self.train_split.x, self.train_split.y
        for idx in batches[start:]:
            yield self.to_device(x[idx]), self.to_device(y[idx])

    def eval(self, split):
        for sl in eval_batches(len(split.y), self.eval_batch_size):
            yield self.to_device(split.x[sl]), self.to_device(split.y[sl])
