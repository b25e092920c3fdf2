"""Image files decoded on demand: what `dataset=image_folder` holds when it does not preload.

`ImageFiles` stands in for an (N, C, H, W) uint8 tensor: it has a shape and a dtype, splits
take subsets of it without reading a pixel (`subset`), and indexing it decodes and resizes
the selected files, in DataLoader workers when training (trainer.data_placement=loader).
So a folder larger than memory trains, and a preloaded folder is simply `files[:]`: the
same decode and resize, hence bit-identical pixels either way.
"""
import os

import numpy as np
import torch

from trainlab.errors import FileError


class ImageFiles:
    dtype = torch.uint8

    def __init__(self, paths, channels: int, size: int):
        # Fixed-width bytes, not a list of str: forked workers reading a list of Python objects
        # touch their refcounts and so copy every page of it; this array stays shared.
        self.paths = paths if isinstance(paths, np.ndarray) else np.array([os.fsencode(p) for p in paths], dtype=bytes)
        self.channels, self.size = channels, size

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.paths), self.channels, self.size, self.size))

    @property
    def nbytes(self) -> int:
        """The decoded size: what preloading would take in memory."""
        return self.shape.numel()

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, idx) -> "ImageFiles":
        """The files at `idx` (indices or a slice), still undecoded."""
        return ImageFiles(self.paths[_numpy_index(idx)], self.channels, self.size)

    def __getitem__(self, idx) -> torch.Tensor:
        """Decode: one image (C, H, W) for an integer, a batch (n, C, H, W) otherwise."""
        if isinstance(idx, (int, np.integer)) or (torch.is_tensor(idx) and idx.dim() == 0):
            return self.decode(self.paths[int(idx)])
        picked = self.paths[_numpy_index(idx)]
        if len(picked) == 0:
            return torch.empty((0, self.channels, self.size, self.size), dtype=self.dtype)
        return torch.stack([self.decode(p) for p in picked])

    def decode(self, path: bytes) -> torch.Tensor:
        from torchvision.io import ImageReadMode, decode_image
        from torchvision.transforms.v2.functional import resize

        mode = ImageReadMode.RGB if self.channels == 3 else ImageReadMode.GRAY
        try:
            image = decode_image(os.fsdecode(path), mode=mode)
        except (RuntimeError, OSError, ValueError) as err:
            raise UnreadableImage(os.fsdecode(path), str(err).strip().splitlines()[0] if str(err).strip() else "") from None
        return resize(image, [self.size, self.size], antialias=True)

    def to(self, device) -> "ImageFiles":
        return self  # files stay on disk; their batches travel


class UnreadableImage(FileError):
    """An image file the decoder cannot read, named in one line. Raised in a DataLoader worker, it
    comes back to the training process rebuilt by torch from its message (`message=`, the worker's
    traceback as text, whose last line is this error): the file and the reason are read back from it."""

    PROBLEM = "not a readable image"

    def __init__(self, path: str | None = None, why: str = "", message: str | None = None):
        if message is not None:
            last = message.strip().splitlines()[-1].partition("UnreadableImage: ")[2]
            cut = last.rfind(f": {self.PROBLEM}")
            path, problem = (last[:cut], last[cut + 2:]) if cut >= 0 else (last, self.PROBLEM)
        else:
            problem = f"{self.PROBLEM}{f' ({why[:120]})' if why else ''}; remove or replace it"
        super().__init__(path, problem)


def _numpy_index(idx):
    if isinstance(idx, slice):
        return idx
    return idx.cpu().numpy() if torch.is_tensor(idx) else np.asarray(idx)


def is_lazy(x) -> bool:
    """Inputs still on disk (read per batch) rather than a tensor in memory."""
    return isinstance(x, ImageFiles)
