"""Train / val / test splits: val carved from train (or a CV fold), test untouched.

The dependency runs one way: trainlab.data.datasets uses these helpers to carve an
image folder's test split, and this module reaches the loaders only through the
registry in trainlab.schemas.dataset, which imports them on first use.
"""
import logging
from dataclasses import dataclass

import numpy as np
import torch

from trainlab.data.image_files import is_lazy
from trainlab.data.stratify import shuffle_split, stratified_folds, stratified_shuffle_split
from trainlab.errors import ConfigError
from trainlab.schemas.dataset import DATASETS


@dataclass
class Split:
    x: torch.Tensor  # or ImageFiles: images on disk, decoded per batch (dataset.preload=false)
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device) -> "Split":
        return Split(self.x.to(device), self.y.to(device))


@dataclass
class Splits:
    train: Split
    val: Split
    test: Split
    classes: list[str]

    @property
    def input_shape(self) -> tuple:
        return tuple(self.train.x.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def _stratify_ok(y: np.ndarray, n_small: int) -> bool:
    counts = np.bincount(y)
    return counts[counts > 0].min() >= 2 and n_small >= len(counts[counts > 0])


def held_count(n: int, fraction: float) -> int:
    return min(n - 1, max(1, int(round(n * fraction))))


def stratified_split(y: torch.Tensor, n_held: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (keep, held_out) with `n_held` held out, class proportions preserved."""
    labels = y.numpy()
    if _stratify_ok(labels, min(n_held, len(y) - n_held)):
        keep, held = stratified_shuffle_split(labels, n_held, seed)
    else:
        keep, held = shuffle_split(len(labels), n_held, seed)
    return np.sort(keep), np.sort(held)


def cv_fold(y: torch.Tensor, folds: int, fold: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) of stratified fold `fold` out of `folds`."""
    if np.bincount(y.numpy()).min() < folds:
        raise ConfigError("dataset.cv.folds", folds, "at most the size of the smallest class in the training set")
    fold_of = stratified_folds(y.numpy(), folds, seed)
    return np.flatnonzero(fold_of != fold), np.flatnonzero(fold_of == fold)


def take(x, idx):
    """Rows `idx` of a split's inputs: a tensor is indexed, files still on disk
    (trainlab.data.image_files.ImageFiles) become a subset of files, nothing decoded."""
    return x.subset(idx) if is_lazy(x) else x[idx]


def make_splits(raw, cfg) -> Splits:
    """Carve validation (a CV fold or a held-out fraction) and the training subset: from the
    labels alone, so images on disk are split without being read."""
    x, y = raw.train_x, raw.train_y
    if cfg.cv.folds:
        tr, va = cv_fold(y, cfg.cv.folds, cfg.cv.fold, cfg.split_seed)
        train, val = Split(take(x, tr), y[tr]), Split(take(x, va), y[va])
    elif raw.val_x is not None:
        train, val = Split(x, y), Split(raw.val_x, raw.val_y)
    else:
        tr, va = stratified_split(y, held_count(len(y), cfg.val_split), cfg.split_seed)
        train, val = Split(take(x, tr), y[tr]), Split(take(x, va), y[va])
    if cfg.subset is not None and cfg.subset < len(raw.classes):  # a class would have no training example
        raise ConfigError("dataset.subset", cfg.subset, f"at least {len(raw.classes)} (one example per class), or null")
    if cfg.subset is not None and cfg.subset > len(train):
        logging.getLogger("trainlab").warning(
            f"dataset.subset={cfg.subset} is larger than the training split ({len(train)} examples once validation "
            "is carved out): all of them are used")
    if cfg.subset is not None and cfg.subset < len(train):
        _, keep = stratified_split(train.y, cfg.subset, cfg.split_seed)
        train = Split(take(train.x, keep), train.y[keep])
    return Splits(train, val, Split(raw.test_x, raw.test_y), raw.classes)


def load_splits(cfg) -> Splits:
    raw = DATASETS[cfg.name].build(cfg)
    return make_splits(raw, cfg)
