"""Seeded stratified splitting with numpy alone, index for index what scikit-learn gives.

Why not scikit-learn itself: importing sklearn.model_selection pulls in scipy and costs
about a second per process, more than a tiny run trains, and these splits were the only
reason the default path needed it. The functions below follow scikit-learn's algorithms
(train_test_split with and without `stratify`, StratifiedKFold(shuffle=True)) draw for
draw on a numpy RandomState, so splits, subsets and CV folds are the ones trainlab runs
made before; tests/test_data.py compares them with scikit-learn on many label arrays.
"""
import math

import numpy as np


def _approximate_mode(counts: np.ndarray, draws: int, rng: np.random.RandomState) -> np.ndarray:
    """How many of `draws` to take from each class: the proportional share rounded down, the
    remainder given to the classes with the largest fractional parts (ties drawn at random)."""
    continuous = counts / counts.sum() * draws
    floored = np.floor(continuous)
    need = int(draws - floored.sum())
    if need > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (candidates,) = np.where(remainder == value)
            now = min(len(candidates), need)
            floored[rng.choice(candidates, size=now, replace=False)] += 1
            need -= now
            if need == 0:
                break
    return floored.astype(int)


def shuffle_split(n: int, n_test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices of a plain seeded shuffle, in draw order."""
    permutation = np.random.RandomState(seed).permutation(n)
    return permutation[n_test:], permutation[:n_test]


def stratified_shuffle_split(labels: np.ndarray, n_test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices with `n_test` held out and class proportions kept, in draw order."""
    n = len(labels)
    classes, encoded = np.unique(labels, return_inverse=True)
    counts = np.bincount(encoded)
    per_class = np.split(np.argsort(encoded, kind="mergesort"), np.cumsum(counts)[:-1])
    rng = np.random.RandomState(seed)
    n_train_i = _approximate_mode(counts, n - n_test, rng)
    n_test_i = _approximate_mode(counts - n_train_i, n_test, rng)
    train, test = [], []
    for i in range(len(classes)):
        members = per_class[i].take(rng.permutation(counts[i]), mode="clip")
        train.extend(members[: n_train_i[i]])
        test.extend(members[n_train_i[i]: n_train_i[i] + n_test_i[i]])
    return rng.permutation(train), rng.permutation(test)


def test_count(n: int, test_size: float | int) -> int:
    """Held-out examples for a fraction (rounded up) or a count, as train_test_split reads it."""
    return int(test_size) if isinstance(test_size, (int, np.integer)) else math.ceil(test_size * n)


def stratified_folds(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The fold (0..folds-1) of every example: each class dealt round-robin over the folds,
    then each class's fold labels shuffled. Classes are numbered by first appearance."""
    labels = np.asarray(labels)
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    _, order = np.unique(first, return_inverse=True)
    encoded = order[inverse]
    n_classes = len(first)
    sorted_labels = np.sort(encoded)
    allocation = np.asarray([np.bincount(sorted_labels[i::folds], minlength=n_classes) for i in range(folds)])
    rng = np.random.RandomState(seed)
    fold_of = np.empty(len(labels), dtype="i")
    for k in range(n_classes):
        assigned = np.arange(folds).repeat(allocation[:, k])
        rng.shuffle(assigned)
        fold_of[encoded == k] = assigned
    return fold_of
