"""Datasets by name (`dataset=`), loaded whole into tensors.

Every loader returns RawData: images as (N, C, H, W) uint8 where the source is
uint8 (float32 in [0, 1] otherwise), features as (N, D) float32, labels int64.
Holding the data as one tensor is what lets the engine batch by indexing on
the training device instead of going through a DataLoader. The one exception:
an image folder too large to preload keeps its inputs as ImageFiles (paths,
decoded per batch by DataLoader workers); its labels are still a tensor.
Each option's keys, defaults and checks are in trainlab.schemas.dataset.
"""
import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from trainlab.data.image_files import ImageFiles
from trainlab.data.splits import held_count, stratified_split, take
from trainlab.data.stratify import stratified_shuffle_split, test_count
from trainlab.errors import ConfigError
from trainlab.schemas.dataset import DATASETS, DigitsSchema, ImageFolderSchema, SpiralsSchema, SyntheticSchema, TorchvisionBase


@dataclass
class RawData:
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: list[str]
    val_x: torch.Tensor | None = None  # a dataset's own validation split, if it has one
    val_y: torch.Tensor | None = None


def _images_to_tensor(array, channels_last: bool) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(array))
    if x.dim() == 3:  # (N, H, W) grayscale
        return x.unsqueeze(1).contiguous()
    return (x.permute(0, 3, 1, 2) if channels_last else x).contiguous()


@DATASETS.builder("digits")
def load_digits(cfg: DigitsSchema) -> RawData:
    """The 8x8 digits embedded in the package (trainlab/data/digits.npz; provenance in
    scripts/make_digits.py): 1797 images, 10 classes. The source has no test split, so a
    fixed stratified 20% becomes the test set."""
    images, targets, tr, te = _digits_arrays()
    # fresh tensors per run: nothing a run does to its data can reach the cache
    x = torch.tensor(images / 16.0, dtype=torch.float32).unsqueeze(1)  # pixel values are 0..16
    y = torch.tensor(targets, dtype=torch.int64)
    tr, te = torch.tensor(tr), torch.tensor(te)
    return RawData(x[tr], y[tr], x[te], y[te], [str(c) for c in range(10)])


DIGITS_FILE = Path(__file__).with_name("digits.npz")
DIGITS_SHA256 = "87ff0c9e40dc7e2c0e34e7257799c2e3f3aec1a016363bb11cad869ec428a826"  # of images + targets bytes


@functools.cache
def _digits_arrays():
    """Read and checked once per process (a sweep's jobs share it); a damaged file is refused."""
    import hashlib

    with np.load(DIGITS_FILE) as data:
        images, targets = data["images"], data["targets"]
    if hashlib.sha256(images.tobytes() + targets.tobytes()).hexdigest() != DIGITS_SHA256:
        raise ConfigError("dataset", "digits", f"an intact {DIGITS_FILE} (its checksum does not match: reinstall trainlab)")
    images, targets = images.astype(np.float64), targets.astype(np.int64)
    tr, te = stratified_shuffle_split(targets, test_count(len(targets), 0.2), seed=0)
    for array in (images, targets, tr, te):
        array.flags.writeable = False
    return images, targets, tr, te


@DATASETS.builder("spirals")
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


@DATASETS.builder("synthetic")
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


# option -> (torchvision class, whether its images are stored as (N, H, W, C))
TORCHVISION = {"mnist": ("MNIST", False), "fashion_mnist": ("FashionMNIST", False),
               "cifar10": ("CIFAR10", True), "cifar100": ("CIFAR100", True),  # (N, H, W, C) numpy
               "svhn": ("SVHN", False)}                                       # (N, C, H, W)


@DATASETS.builder(*TORCHVISION)
def load_torchvision(cfg: TorchvisionBase) -> RawData:
    """Both torchvision splits as tensors; the dataset's own class names where it has them."""
    import torchvision.datasets as tvd

    class_name, channels_last = TORCHVISION[cfg.name]
    cls = getattr(tvd, class_name)
    sets = [_torchvision_split(cls, cfg, train) for train in (True, False)]
    xs = [_images_to_tensor(s.data, channels_last) for s in sets]
    ys = [torch.as_tensor(np.asarray(getattr(s, "targets", None) if hasattr(s, "targets") else s.labels),
                          dtype=torch.int64) for s in sets]
    classes = list(getattr(sets[0], "classes", [str(c) for c in range(int(ys[0].max()) + 1)]))
    return RawData(xs[0], ys[0], xs[1], ys[1], [str(c) for c in classes])


def _list_folder(path: Path, cfg: ImageFolderSchema, classes: list[str] | None):
    """(files, labels, class names) of a folder holding one sub-folder of images per class."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

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


@DATASETS.builder("image_folder")
def load_image_folder(cfg: ImageFolderSchema) -> RawData:
    """Images on disk, resized to one size: decoded once and held in memory as uint8, or (preload
    off) kept as file paths and decoded per batch by the training DataLoader's workers."""
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
