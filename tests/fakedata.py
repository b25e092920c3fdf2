"""Tiny stand-ins for datasets the test machines don't have, written in torchvision's own layout."""
import pickle
from pathlib import Path

import numpy as np


def write_cifar(root: Path, name: str = "cifar10", n_train: int = 60, n_test: int = 20, seed: int = 0) -> None:
    """CIFAR-10/100 python-pickle batches with random pixels."""
    rng = np.random.default_rng(seed)
    folder, label_key, classes, meta = {
        "cifar10": ("cifar-10-batches-py", "labels", 10, "batches.meta"),
        "cifar100": ("cifar-100-python", "fine_labels", 100, "meta"),
    }[name]
    out = root / folder
    out.mkdir(parents=True, exist_ok=True)

    def batch(n):
        return {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                label_key: list(rng.integers(0, classes, n).tolist())}

    names = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"] if name == "cifar10" else ["train"]
    for fname in names:
        with open(out / fname, "wb") as fh:
            pickle.dump(batch(n_train // len(names)), fh)
    with open(out / ("test_batch" if name == "cifar10" else "test"), "wb") as fh:
        pickle.dump(batch(n_test), fh)
    key = "label_names" if name == "cifar10" else "fine_label_names"
    with open(out / meta, "wb") as fh:
        pickle.dump({key: [f"class{i}" for i in range(classes)]}, fh)


def write_svhn(root: Path, n_train: int = 60, n_test: int = 20, seed: int = 0) -> None:
    """SVHN .mat files: X is (32, 32, 3, N), y holds labels 1..10 (10 means digit 0)."""
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        savemat(root / f"{split}_32x32.mat", {"X": rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8),
                                              "y": rng.integers(1, 11, (n, 1)).astype(np.uint8)})


def write_image_folder(root: Path, classes=("cat", "dog", "fox"), per_class: int = 12, size=(20, 14), seed: int = 0,
                       layout: str = "flat") -> Path:
    """PNG files in one folder per class (layout 'flat') or under train/ and test/ ('split')."""
    import torch
    from torchvision.io import write_png

    g = torch.Generator().manual_seed(seed)
    subsets = {"": per_class} if layout == "flat" else {"train": per_class, "test": max(2, per_class // 3)}
    for sub, count in subsets.items():
        for label, cls in enumerate(classes):
            folder = root / sub / cls if sub else root / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                base = torch.full((3, *size), 60 * label, dtype=torch.uint8)
                noise = torch.randint(0, 40, (3, *size), generator=g, dtype=torch.uint8)
                write_png(base + noise, str(folder / f"{i}.png"))
    return root
