"""A torchvision dataset's files, looked for once before any folder (a sweep of 18 jobs without them
made 18 failed folders, each after its own download attempt). Without torch: the files are listed
here in torchvision's layout (trainlab.data.datasets reads them with torchvision's classes)."""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from trainlab.errors import ConfigError


@dataclass(frozen=True)
class Layout:
    folder: str              # below dataset.root
    files: tuple[str, ...]   # what torchvision reads (download=false needs these)
    archives: tuple[str, ...]  # what download=true extracts without a network when present
    host: str                # where download=true fetches from


_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
LAYOUTS = {
    "mnist": Layout("MNIST/raw", _MNIST_FILES, tuple(f + ".gz" for f in _MNIST_FILES), "ossci-datasets.s3.amazonaws.com"),
    "fashion_mnist": Layout("FashionMNIST/raw", _MNIST_FILES, tuple(f + ".gz" for f in _MNIST_FILES),
                            "fashion-mnist.s3-website.eu-central-1.amazonaws.com"),
    "cifar10": Layout("cifar-10-batches-py", (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"),
                      ("../cifar-10-python.tar.gz",), "www.cs.toronto.edu"),
    "cifar100": Layout("cifar-100-python", ("train", "test"), ("../cifar-100-python.tar.gz",), "www.cs.toronto.edu"),
    "svhn": Layout(".", ("train_32x32.mat", "test_32x32.mat"), ("train_32x32.mat", "test_32x32.mat"),
                   "ufldl.stanford.edu"),
}
PROBE_TIMEOUT_S = 5.0


def host_reachable(host: str) -> bool:
    """One connect to the download host's HTTPS port (tests replace this: they never touch the network)."""
    try:
        with socket.create_connection((host, 443), timeout=PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def check_dataset_files(schema, reachable=None) -> None:
    layout = LAYOUTS.get(getattr(schema, "name", ""))
    if layout is None:
        return
    root = Path(str(schema.root)).expanduser().absolute()
    where = (root / layout.folder).resolve()
    if all((where / f).is_file() for f in layout.files):
        return
    if schema.download and all((where / a).is_file() for a in layout.archives):
        return  # torchvision extracts them offline
    probe = reachable or host_reachable
    if schema.download and probe(layout.host):
        return
    env = os.environ.get("TRAINLAB_DATA")
    source = " (from $TRAINLAB_DATA)" if env and Path(env).expanduser().absolute() == root else \
        " ($TRAINLAB_DATA is not set)" if not env else ""
    archives = ", ".join(Path(a).name for a in layout.archives)
    dest = (where / Path(layout.archives[0]).parent).resolve()
    elsewhere = "or point dataset.root (or $TRAINLAB_DATA) at a folder that has them"
    if schema.download:
        why = (f"no {schema.name} data there and its download host {layout.host} cannot be reached from here; copy "
               f"torchvision's archives ({archives}) into {dest} (dataset.download=true extracts them offline), {elsewhere}")
    else:
        why = (f"no {schema.name} data there; set dataset.download=true to fetch it (needs a network) or to extract "
               f"torchvision's archives ({archives}) copied into {dest}, {elsewhere}")
    raise ConfigError("dataset.root", str(root), f"{why}; looked in {where}{source}")
