"""Batches through a torch DataLoader (trainer.data_placement=loader), for data that does not
fit on the training device or is still on disk (dataset=image_folder with preload off).

The loader reads exactly the batches the device path would gather: Loop.train_epoch draws
the epoch's permutation from the run's shuffle generator (whose state checkpoints save),
keeps this process's slice of every global batch and hands those index batches, from batch
`start` of a resumed epoch on, to `PlannedBatches`, the loader's batch sampler. The dataset
gathers a whole batch per call (`__getitems__`: one index op, or one decode per file in a
worker), batches arrive as raw (often uint8) tensors, pinned when training on CUDA, and are
copied with non_blocking; augmentation and preprocessing then run on the device as for
resident data. So a loader run and a device run with the same seed train on the same batches.
"""
import weakref
from collections.abc import Iterable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class SplitDataset(Dataset):
    """A split (inputs: a tensor, or `ImageFiles` decoded on demand) as a map-style dataset."""

    def __init__(self, split):
        self.x, self.y = split.x, split.y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]

    def __getitems__(self, idx):
        """A whole batch (an index tensor) in one gather, not one call per example."""
        return self.x[idx], self.y[idx]


def gathered(batch):
    """The collate function: `__getitems__` already returns the stacked batch."""
    return batch


class PlannedBatches(Sampler):
    """The training loader's batch sampler: the index batches Loop.train_epoch planned for
    this process and epoch, from batch `start` on (a resumed epoch), on the host."""

    def __init__(self):
        self.batches: list[torch.Tensor] = []

    def plan(self, batches: list[torch.Tensor], start: int = 0) -> None:
        rest = batches[start:]
        # one copy per epoch (the permutation may be drawn on the GPU), never one per step
        self.batches = list(torch.stack(rest).cpu()) if rest else []

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def default_workers() -> int:
    """This process's share of the CPU cores, at most 8: the run set torch's thread count to that
    share (trainer.threads, with parallel jobs and DDP ranks per node counted)."""
    return max(1, min(8, torch.get_num_threads()))


def make_loader(split, batch_sampler: Iterable, cfg, pin: bool, persistent: bool | None = None) -> DataLoader:
    """A DataLoader reading `split` in the given index batches with cfg.workers processes."""
    workers = default_workers() if cfg.workers is None else cfg.workers
    return DataLoader(
        SplitDataset(split), batch_sampler=batch_sampler, collate_fn=gathered, num_workers=workers,
        pin_memory=pin, prefetch_factor=cfg.prefetch_factor if workers else None,
        persistent_workers=(cfg.persistent_workers if persistent is None else persistent) and workers > 0,
        # DataLoader draws its workers' base seed from this generator each epoch; without one it would
        # draw from the global RNG and shift every later dropout mask. The workers draw nothing random.
        generator=torch.Generator().manual_seed(0),
    )


class LoaderBatches:
    """Training and evaluation batches of the splits, read by DataLoaders, on the training device."""

    def __init__(self, splits, cfg, device: torch.device, eval_batch_size: int):
        self.cfg, self.device, self.eval_batch_size = cfg, device, eval_batch_size
        self.pin = device.type == "cuda"  # pinned batches make the copies asynchronous
        self.sampler = PlannedBatches()
        self.train_loader = make_loader(splits.train, self.sampler, cfg, self.pin)
        self.eval_loaders: dict[int, tuple] = {}  # id(split) -> (split, its loader); built on first use
        # Workers stop when their DataLoader's iterator is freed. A run's Loop usually dies in a
        # garbage-collected cycle, and there multiprocessing finalizes the loaders' queues before the
        # iterators could use them to stop the workers (each then waits out a 5 s join timeout).
        # Held by a finalizer, the loaders stay outside that cycle and are freed intact after it.
        self.loaders = [self.train_loader]
        weakref.finalize(self, self.loaders.clear)

    def to_device(self, batch):
        x, y = batch
        return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def train(self, batches: list[torch.Tensor], start: int = 0):
        self.sampler.plan(batches, start)
        for batch in self.train_loader:
            yield self.to_device(batch)

    def eval(self, split):
        if id(split) not in self.eval_loaders:  # the split is kept with its loader, so its id stays unique
            # index batches, not slices: a slice of a tensor is a view of the whole split, and a worker
            # sending a view moves all of its storage into shared memory
            batches = list(torch.arange(len(split.y)).split(self.eval_batch_size))
            self.eval_loaders[id(split)] = (split, make_loader(split, batches, self.cfg, self.pin))
            self.loaders.append(self.eval_loaders[id(split)][1])
        for batch in self.eval_loaders[id(split)][1]:
            yield self.to_device(batch)


def read_inputs(split, batches: list, cfg) -> Iterator[torch.Tensor]:
    """The inputs of `split` in the given index batches, read by one-off workers (streamed
    preprocessing statistics of images still on disk)."""
    for x, _ in make_loader(split, batches, cfg, pin=False, persistent=False):
        yield x
