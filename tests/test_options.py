"""Every option of every core config group composes and trains a tiny CPU run."""
import math

import pytest
import torchvision

from conftest import compose_cfg, run_tiny
from fakedata import write_cifar, write_image_folder, write_svhn
from trainlab.app.compose import group_options

CONV = ["arch=cnn", "arch.channels=[8,16]"]

# Per option, the extra overrides that make it meaningful (e.g. instance norm needs conv features).
CASES = {
    "preprocess": {"pca": ["preprocess.components=16"], "whiten": [], "center": ["preprocess.mode=mean_image"]},
    "arch": {"cnn": CONV[1:], "resnet": ["arch.depth=8", "arch.width=4"],
             "torchvision": ["dataset=synthetic", "dataset.shape=[3,32,32]", "dataset.train_size=64",
                             "dataset.subset=null", "arch.model=resnet18", "trainer.batch_size=16"]},
    "norm": {"instancenorm": CONV, "groupnorm": ["norm.groups=4", *CONV]},
    "dataset": {"synthetic": ["dataset.subset=null", "dataset.train_size=128"]},
}


def option_cases(group):
    return [(group, option, CASES.get(group, {}).get(option, [])) for option in group_options(group)]


SIMPLE_GROUPS = ["preprocess", "arch", "activation", "init", "norm", "loss"]


@pytest.mark.parametrize("group,option,extra", [c for g in SIMPLE_GROUPS for c in option_cases(g)],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_option_trains(tmp_path, group, option, extra):
    summary = run_tiny(tmp_path, [f"{group}={option}", *extra])
    assert summary["status"] == "completed", summary
    assert math.isfinite(summary["final"]["train_loss"])
    assert 0.0 <= summary["test"]["acc"] <= 1.0
    assert (tmp_path / "metrics.csv").is_file() and (tmp_path / "checkpoints" / "best.pt").is_file()


@pytest.mark.parametrize("activation", group_options("activation"))
@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_every_activation_in_mlp_and_cnn(tmp_path, activation, arch):
    extra = CONV[1:] if arch == "cnn" else ["arch.width=16"]
    summary = run_tiny(tmp_path, [f"arch={arch}", f"activation={activation}", *extra])
    assert summary["status"] == "completed"


@pytest.mark.parametrize("trainer", group_options("trainer"))
def test_trainer_presets(tmp_path, trainer):
    summary = run_tiny(tmp_path, [f"trainer={trainer}", "trainer.epochs=1", "dataset.subset=100"])
    assert summary["status"] == "completed"


def test_spirals_trains_a_nonlinear_boundary(tmp_path):
    summary = run_tiny(tmp_path, ["dataset=spirals", "dataset.subset=null", "trainer.epochs=40",
                                  "trainer.batch_size=64", "optimizer.lr=0.01", "arch.width=64"])
    assert summary["test"]["acc"] > 0.9  # a linear model manages about a third


def test_synthetic_any_shape(tmp_path):
    summary = run_tiny(tmp_path, ["dataset=synthetic", "dataset.shape=[7]", "dataset.classes=3",
                                  "dataset.train_size=90", "dataset.subset=null", "dataset.dtype=float32"])
    assert summary["status"] == "completed"
    assert summary["num_params"] == 7 * 256 + 256 + 256 * 256 + 256 + 256 * 3 + 3


@pytest.mark.parametrize("layout", ["flat", "split"])
def test_image_folder(tmp_path, layout):
    root = write_image_folder(tmp_path / "images", layout=layout)
    summary = run_tiny(tmp_path / "run", ["dataset=image_folder", f"dataset.root={root}", "dataset.image_size=16",
                                          "dataset.subset=null", *CONV])
    assert summary["status"] == "completed"
    # three classes that differ in brightness: trivially separable
    assert summary["test"]["acc"] >= 0.5


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "svhn"])
def test_torchvision_rgb_datasets(tmp_path, monkeypatch, name):
    """The files are fakes in torchvision's layout, so the checksum check is bypassed."""
    cls = {"cifar10": torchvision.datasets.CIFAR10, "cifar100": torchvision.datasets.CIFAR100,
           "svhn": torchvision.datasets.SVHN}[name]
    monkeypatch.setattr(cls, "_check_integrity", lambda self: True)
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *a, **k: True)
    (write_svhn if name == "svhn" else lambda r: write_cifar(r, name))(tmp_path / "data")
    summary = run_tiny(tmp_path / "run", [f"dataset={name}", f"dataset.root={tmp_path / 'data'}", "dataset.subset=null",
                                          "dataset.val_split=0.2", *CONV])
    assert summary["status"] == "completed"
    assert summary["num_params"] > 0


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_mnist_family_from_shared_archives(tmp_path, data_root, name):
    summary = run_tiny(tmp_path, [f"dataset={name}", f"dataset.root={data_root}", "dataset.download=true",
                                  "dataset.subset=300", "arch.width=32"])
    assert summary["status"] == "completed"
    assert summary["test"]["acc"] > 0.3  # 10 classes, 300 examples, one epoch: well above chance


def test_group_choices_are_listed_in_the_composed_config():
    cfg = compose_cfg(["optimizer=sgd", "regularizer=[l2,dropout]"])
    assert cfg.optimizer.name == "sgd"
    assert set(cfg.regularizer) == {"l2", "dropout"}


def test_torchvision_cifar_stem_trains(tmp_path):
    summary = run_tiny(tmp_path, ["arch=torchvision", "arch.model=resnet18", "arch.cifar_stem=true",
                                  "dataset=synthetic", "dataset.shape=[3,16,16]", "dataset.train_size=48",
                                  "dataset.subset=null", "trainer.batch_size=16"])
    assert summary["status"] == "completed", summary
