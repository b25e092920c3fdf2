"""dataset=: one schema per option (the loaders are in trainlab.data.datasets).

Every dataset shares the keys of DatasetBase: where the files live and how the
validation split, cross-validation fold and training subset are carved.
"""
from dataclasses import dataclass, field
from typing import Any

from trainlab.errors import check
from trainlab.registry import Registry

DATASETS = Registry("dataset", builders="trainlab.data.datasets")


@dataclass
class CVSchema:
    folds: int = 0  # folds the training split is cut into (0 = off, else >= 2)
    fold: int = 0   # which fold is the validation set, 0 .. folds-1


@dataclass
class DatasetBase:
    """Keys every dataset has: where it lives and how the splits are carved."""

    name: str = ""
    root: str = "data"          # folder the files are read from (digits, spirals, synthetic read none)
    download: bool = False      # fetch missing files (torchvision datasets only)
    val_split: float = 0.1      # fraction of the training split held out for validation
                                # (unused with cv.folds > 0 or a dataset's own val split)
    subset: int | None = None   # train on N stratified training examples (null = all)
    split_seed: int = 0         # seeds the val/CV/subset carving; fixed across run seeds on purpose
    cv: CVSchema = field(default_factory=CVSchema)  # k-fold cross-validation: a fold validates instead of val_split

    def __post_init__(self):
        check(0 < self.val_split < 1, "val_split", self.val_split, "a fraction in (0, 1)")
        check(self.subset is None or self.subset >= 1, "subset", self.subset, "a positive count or null")
        check(self.cv.folds == 0 or self.cv.folds >= 2, "cv.folds", self.cv.folds, "0 (off) or an integer >= 2")
        check(self.cv.folds > 0 or self.cv.fold == 0, "cv.fold", self.cv.fold,
              "0 without dataset.cv.folds (set dataset.cv.folds=K to pick fold i of K)")
        check(self.cv.folds == 0 or 0 <= self.cv.fold < self.cv.folds, "cv.fold", self.cv.fold,
              f"an integer in [0, {max(self.cv.folds - 1, 0)}]")


@DATASETS.option("digits", "scikit-learn's 8x8 handwritten digits (1797 images, 10 classes), shipped with the package.")
@dataclass
class DigitsSchema(DatasetBase):
    """scikit-learn ships no test split: a fixed stratified 20% of the images is the test set."""

    name: str = "digits"


@DATASETS.option("spirals", "Interleaved 2-D spirals: the classic toy for non-linear decision boundaries.")
@dataclass
class SpiralsSchema(DatasetBase):
    """split_seed also seeds the generated points."""

    name: str = "spirals"
    classes: int = 3        # number of spiral arms
    points: int = 300       # points per arm (train + test)
    noise: float = 0.2      # std of the angular jitter, in radians
    test_split: float = 0.2  # fraction of the points held out as the test set

    def __post_init__(self):
        super().__post_init__()
        check(self.classes >= 2, "classes", self.classes, "an integer >= 2")
        check(self.points >= 10, "points", self.points, "an integer >= 10")
        check(self.noise >= 0, "noise", self.noise, "a non-negative std")
        check(0 < self.test_split < 1, "test_split", self.test_split, "a fraction in (0, 1)")


@DATASETS.option("synthetic", "Random inputs with random labels of any shape: for benchmarks and shape tests (nothing to learn).")
@dataclass
class SyntheticSchema(DatasetBase):
    """split_seed also seeds the generated inputs and labels."""

    name: str = "synthetic"
    shape: list = field(default_factory=lambda: [3, 32, 32])  # one example's shape: [C, H, W] or [D]
    classes: int = 10       # labels are drawn uniformly from this many classes
    train_size: int = 1024  # examples in the training split (before val is carved)
    test_size: int = 256    # examples in the test split
    dtype: str = "uint8"    # uint8 images (like real data) or float32 in [0, 1)

    def __post_init__(self):
        super().__post_init__()
        check(len(self.shape) in (1, 3) and all(isinstance(s, int) and s >= 1 for s in self.shape),
              "shape", list(self.shape), "[C, H, W] or [D] of positive integers")
        check(self.classes >= 2, "classes", self.classes, "an integer >= 2")
        check(self.train_size >= self.classes, "train_size", self.train_size, f"at least the number of classes ({self.classes})")
        check(self.test_size >= 1, "test_size", self.test_size, "a positive count")
        check(self.dtype in ("uint8", "float32"), "dtype", self.dtype, "one of uint8, float32")


@dataclass
class TorchvisionBase(DatasetBase):
    """A torchvision dataset read from (or downloaded into) root, in torchvision's layout."""

    root: str = "${oc.env:TRAINLAB_DATA,data}"  # folder holding the torchvision files ($TRAINLAB_DATA, else data)
    download: bool = False  # true: fetch, or extract archives already in <root>/<Name>/raw (works offline)


@DATASETS.option("mnist", "MNIST handwritten digits, 28x28 grayscale, 60k train / 10k test (torchvision layout under root).")
@dataclass
class MnistSchema(TorchvisionBase):
    name: str = "mnist"


@DATASETS.option("fashion_mnist", "Fashion-MNIST clothing images, 28x28 grayscale, 60k train / 10k test "
                                  "(torchvision layout under root).")
@dataclass
class FashionMnistSchema(TorchvisionBase):
    name: str = "fashion_mnist"


@DATASETS.option("cifar10", "CIFAR-10, 32x32 RGB, 10 classes, 50k train / 10k test (torchvision layout under root).")
@dataclass
class Cifar10Schema(TorchvisionBase):
    name: str = "cifar10"


@DATASETS.option("cifar100", "CIFAR-100, 32x32 RGB, 100 classes, 50k train / 10k test (torchvision layout under root).")
@dataclass
class Cifar100Schema(TorchvisionBase):
    name: str = "cifar100"


@DATASETS.option("svhn", "SVHN house numbers, 32x32 RGB, 73k train / 26k test (torchvision layout under root).")
@dataclass
class SvhnSchema(TorchvisionBase):
    name: str = "svhn"


@DATASETS.option("image_folder", "Your own images: root/<class>/*.png, or root/train/<class>/ with optional val/ and test/.")
@dataclass
class ImageFolderSchema(DatasetBase):
    """Decoded once and held in memory as uint8, or (preload off) kept as file paths and
    decoded per batch by the training DataLoader's workers."""

    name: str = "image_folder"
    root: str = "???"        # required: dataset.root=/path/to/images
    image_size: int = 32     # every image is resized to image_size x image_size pixels
    channels: int = 3        # 3 = RGB, 1 = grayscale
    test_split: float = 0.2  # fraction held out as test when there is no test/ folder
    preload: Any = "auto"    # true: decode every image into memory once; false: keep file paths and decode
                             # per batch in DataLoader workers (a folder larger than RAM trains; forces
                             # trainer.data_placement=loader); auto: preload when it takes <= preload_limit_mb
    preload_limit_mb: int = 2048  # decoded size (images x channels x image_size^2 bytes) auto still preloads

    def __post_init__(self):
        super().__post_init__()
        check(self.image_size >= 1, "image_size", self.image_size, "a positive pixel count")
        check(self.channels in (1, 3), "channels", self.channels, "1 or 3")
        check(0 < self.test_split < 1, "test_split", self.test_split, "a fraction in (0, 1)")
        check(isinstance(self.preload, bool) or self.preload == "auto", "preload", self.preload,
              "one of true, false, auto")
        check(self.preload_limit_mb >= 0, "preload_limit_mb", self.preload_limit_mb, "a size in MB >= 0")
