"""Datasets by name (`dataset=`), loaded whole into tensors.

Every loader returns RawData: images as (N, C, H, W) uint8 where the source is
uint8 (float32 in [0, 1] otherwise), features as (N, D) float32, labels int64.
Holding the data as one tensor is what lets the engine batch by indexing on
the training device instead of going through a DataLoader. The one exception:
an image folder too large to preload keeps its inputs as ImageFiles (paths,
decoded per batch by DataLoader workers); its labels are still a tensor.
"""
import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainlab.errors import ConfigError, check
from trainlab.registry import Registry

DATASETS = Registry("dataset")


@dataclass
class RawData:
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: list[str]
    val_x: torch.Tensor | None = None  # a dataset's own validation split, if it has one
    val_y: torch.Tensor | None = None


@dataclass
class CVSchema:
    folds: int = 0  # k-fold cross-validation over the training set (0 = off, else >= 2)
    fold: int = 0   # which fold is the validation set, 0 .. folds-1


@dataclass
class DatasetSchema:
    """Keys every dataset has: where it lives and how the splits are carved."""

    name: str = ""
    root: str = "data"          # folder holding the files (torchvision layout)
    download: bool = False      # let torchvision fetch/extract missing files
    val_split: float = 0.1      # fraction of the training set held out for validation
    subset: int | None = None   # train on N stratified training examples (quick runs)
    split_seed: int = 0         # seeds the val/CV/subset carving; fixed across run seeds on purpose
    cv: CVSchema = field(default_factory=CVSchema)

    def __post_init__(self):
        check(0 < self.val_split < 1, "val_split", self.val_split, "a fraction in (0, 1)")
        check(self.subset is None or self.subset >= 1, "subset", self.subset, "a positive count or null")
        check(self.cv.folds == 0 or self.cv.folds >= 2, "cv.folds", self.cv.folds, "0 (off) or an integer >= 2")
        check(self.cv.folds == 0 or 0 <= self.cv.fold < self.cv.folds, "cv.fold", self.cv.fold,
              f"an integer in [0, {max(self.cv.folds - 1, 0)}]")


def _images_to_tensor(array, channels_last: bool) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(array))
    if x.dim() == 3:  # (N, H, W) grayscale
        return x.unsqueeze(1).contiguous()
    return (x.permute(0, 3, 1, 2) if channels_last else x).contiguous()


@DATASETS.register("digits", DatasetSchema)
def load_digits(cfg: DatasetSchema) -> RawData:
    """scikit-learn's 8x8 digits, embedded in the package: 1797 images, 10 classes.

    sklearn ships no test split, so a fixed stratified 20% becomes the test set.
    """
    images, targets, tr, te = _digits_arrays()
    # fresh tensors per run: nothing a run does to its data can reach the cache
    x = torch.tensor(images / 16.0, dtype=torch.float32).unsqueeze(1)  # pixel values are 0..16
    y = torch.tensor(targets, dtype=torch.int64)
    tr, te = torch.tensor(tr), torch.tensor(te)
    return RawData(x[tr], y[tr], x[te], y[te], [str(c) for c in range(10)])


@functools.cache
def _digits_arrays():
    """Parsed once per process: scikit-learn re-reads its CSV on every call (~0.2 s), which
    is most of a tiny sweep job's data loading."""
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_digits()
    tr, te = train_test_split(np.arange(len(bunch.target)), test_size=0.2, stratify=bunch.target, random_state=0)
    for array in (bunch.images, bunch.target, tr, te):
        array.flags.writeable = False
    return bunch.images, bunch.target, tr, te


@dataclass
class SpiralsSchema(DatasetSchema):
    name: str = "spirals"
    classes: int = 3       # number of spiral arms
    points: int = 300      # points per arm (train + test)
    noise: float = 0.2     # std of the angular jitter, in radians
    test_split: float = 0.2

    def __post_init__(self):
        super().__post_init__()
        check(self.classes >= 2, "classes", self.classes, "an integer >= 2")
        check(self.points >= 10, "points", self.points, "an integer >= 10")
        check(self.noise >= 0, "noise", self.noise, "a non-negative std")
        check(0 < self.test_split < 1, "test_split", self.test_split, "a fraction in (0, 1)")


@DATASETS.register("spirals", SpiralsSchema)
def load_spirals(cfg: SpiralsSchema) -> RawData:
    """Interleaved 2-D spirals: not linearly separable, the classic toy for decision boundaries."""
    g = torch.Generator().manual_seed(cfg.split_seed)
    radius = torch.linspace(0.0, 1.0, cfg.points).repeat(cfg.classes)
    label = torch.arange(cfg.classes).repeat_interleave(cfg.points)
    theta = label * (2 * math.pi / cfg.classes) + radius * 4.0 + cfg.noise * torch.randn(len(label), generator=g)
    x = torch.stack([radius * torch.sin(theta), radius * torch.cos(theta)], dim=1)
    order = torch.randperm(len(label), generator=g)
    n_test = int(len(label) * cfg.test_split)
    te, tr = order[:n_test], order[n_test:]
    return RawData(x[tr], label[tr], x[te], label[te], [str(c) for c in range(cfg.classes)])


@dataclass
class SyntheticSchema(DatasetSchema):
    name: str = "synthetic"
    shape: list = field(default_factory=lambda: [3, 32, 32])  # one example's shape: [C, H, W] or [D]
    classes: int = 10
    train_size: int = 1024
    test_size: int = 256
    dtype: str = "uint8"  # uint8 images (like real data) or float32

    def __post_init__(self):
        super().__post_init__()
        check(len(self.shape) in (1, 3) and all(isinstance(s, int) and s >= 1 for s in self.shape),
              "shape", list(self.shape), "[C, H, W] or [D] of positive integers")
        check(self.classes >= 2, "classes", self.classes, "an integer >= 2")
        check(self.train_size >= self.classes, "train_size", self.train_size, f"at least the number of classes ({self.classes})")
        check(self.test_size >= 1, "test_size", self.test_size, "a positive count")
        check(self.dtype in ("uint8", "float32"), "dtype", self.dtype, "one of uint8, float32")


@DATASETS.register("synthetic", SyntheticSchema)
def load_synthetic(cfg: SyntheticSchema) -> RawData:
    """Random inputs with random labels, any shape: for benchmarks and shape tests."""
    g = torch.Generator().manual_seed(cfg.split_seed)

    def draw(n):
        if cfg.dtype == "uint8":
            x = torch.randint(0, 256, (n, *cfg.shape), generator=g, dtype=torch.uint8)
        else:
            x = torch.rand((n, *cfg.shape), generator=g)
        return x, torch.randint(0, cfg.classes, (n,), generator=g)

    (trx, try_), (tex, tey) = draw(cfg.train_size), draw(cfg.test_size)
    return RawData(trx, try_, tex, tey, [str(c) for c in range(cfg.classes)])


def _torchvision_split(cls, cfg, train: bool):
    root = Path(cfg.root).expanduser()
    kwargs = {"split": "train" if train else "test"} if cls.__name__ == "SVHN" else {"train": train}
    try:
        return cls(str(root), download=cfg.download, **kwargs)
    except RuntimeError as err:
        if "not found" in str(err).lower() or "corrupted" in str(err).lower():
            hint = "set dataset.download=true (archives already in <root>/<name>/raw are extracted offline)"
            raise ConfigError("dataset.root", str(root), f"no {cfg.name} data there; {hint}") from None
        raise
    except OSError as err:  # download attempted without a network
        raise ConfigError("dataset.root", str(root), f"{cfg.name} could not be fetched ({err.__class__.__name__}); "
                          "copy the archives into <root> and retry") from None


def _register_torchvision(name: str, class_name: str, channels_last: bool):
    @DATASETS.register(name, DatasetSchema)
    def load(cfg: DatasetSchema) -> RawData:
        import torchvision.datasets as tvd

        cls = getattr(tvd, class_name)
        sets = [_torchvision_split(cls, cfg, train) for train in (True, False)]
        xs = [_images_to_tensor(s.data, channels_last) for s in sets]
        ys = [torch.as_tensor(np.asarray(getattr(s, "targets", None) if hasattr(s, "targets") else s.labels),
                              dtype=torch.int64) for s in sets]
        classes = list(getattr(sets[0], "classes", [str(c) for c in range(int(ys[0].max()) + 1)]))
        return RawData(xs[0], ys[0], xs[1], ys[1], [str(c) for c in classes])

    return load


_register_torchvision("mnist", "MNIST", channels_last=False)
_register_torchvision("fashion_mnist", "FashionMNIST", channels_last=False)
_register_torchvision("cifar10", "CIFAR10", channels_last=True)    # stored as (N, H, W, C) numpy
_register_torchvision("cifar100", "CIFAR100", channels_last=True)
_register_torchvision("svhn", "SVHN", channels_last=False)         # stored as (N, C, H, W)


@dataclass
class ImageFolderSchema(DatasetSchema):
    name: str = "image_folder"
    root: str = "???"          # a folder per class, or train/ [val/] [test/] each with a folder per class
    image_size: int = 32       # every image is resized to image_size x image_size
    channels: int = 3          # 3 (RGB) or 1 (grayscale)
    test_split: float = 0.2    # fraction held out as test when there is no test/ folder
    preload: Any = "auto"      # true: decode every image into memory once; false: keep paths, decode per batch
                               # in DataLoader workers; auto: preload when it takes at most preload_limit_mb
    preload_limit_mb: int = 2048  # decoded size (images x channels x image_size^2 bytes) auto preloads up to

    def __post_init__(self):
        super().__post_init__()
        check(self.image_size >= 1, "image_size", self.image_size, "a positive pixel count")
        check(self.channels in (1, 3), "channels", self.channels, "1 or 3")
        check(0 < self.test_split < 1, "test_split", self.test_split, "a fraction in (0, 1)")
        check(isinstance(self.preload, bool) or self.preload == "auto", "preload", self.preload,
              "one of true, false, auto")
        check(self.preload_limit_mb >= 0, "preload_limit_mb", self.preload_limit_mb, "a size in MB >= 0")


def _list_folder(path: Path, cfg: ImageFolderSchema, classes: list[str] | None):
    """(files, labels, class names) of a folder holding one sub-folder of images per class."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    from trainlab.data.image_files import ImageFiles

    try:
        found, index = find_classes(str(path))
        samples = make_dataset(str(path), index, extensions=IMG_EXTENSIONS)
    except FileNotFoundError as err:
        raise ConfigError("dataset.root", str(path), f"a folder with one sub-folder of images per class ({err})") from None
    if classes is not None and found != classes:
        raise ConfigError("dataset.root", str(path), f"the same class folders as train/ ({', '.join(classes)})")
    files = ImageFiles([p for p, _ in samples], cfg.channels, cfg.image_size)
    return files, torch.tensor([c for _, c in samples], dtype=torch.int64), found


def _preloads(cfg: ImageFolderSchema, folders: list) -> bool:
    if cfg.preload != "auto":
        return cfg.preload
    return sum(files.nbytes for files, _, _ in folders) <= cfg.preload_limit_mb * 2**20


@DATASETS.register("image_folder", ImageFolderSchema)
def load_image_folder(cfg: ImageFolderSchema) -> RawData:
    """Images on disk, resized to one size: decoded once and held in memory as uint8, or (preload
    off) kept as file paths and decoded per batch by the training DataLoader's workers."""
    from trainlab.data.splits import held_count, stratified_split, take

    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise ConfigError("dataset.root", str(root), "an existing folder of images (one sub-folder per class)")
    split_layout = (root / "train").is_dir()
    train = _list_folder(root / "train" if split_layout else root, cfg, None)
    classes = train[2]
    own_splits = {sub: _list_folder(root / sub, cfg, classes)  # the layout's val/ and test/ folders
             for sub in ("val", "test") if split_layout and (root / sub).is_dir()}
    if _preloads(cfg, [train, *own_splits.values()]):
        train, own_splits = _decoded(train), {sub: _decoded(f) for sub, f in own_splits.items()}
    trx, try_, _ = train
    if "test" in own_splits:
        tex, tey, _ = own_splits["test"]
    else:
        keep, test = stratified_split(try_, held_count(len(try_), cfg.test_split), cfg.split_seed)
        trx, try_, tex, tey = take(trx, keep), try_[keep], take(trx, test), try_[test]
    raw = RawData(trx, try_, tex, tey, classes)
    if "val" in own_splits:
        raw.val_x, raw.val_y = own_splits["val"][0], own_splits["val"][1]
    return raw


def _decoded(folder):
    files, labels, classes = folder
    return files[:], labels, classes
