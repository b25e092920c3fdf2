"""Precision, channels_last and compile options train (CPU); GPU-only paths are marked."""
import pytest
import torch

from conftest import run_tiny

CNN = ["arch=cnn", "arch.channels=[4,8]"]


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_on_cpu(tmp_path, precision):
    s = run_tiny(tmp_path, [f"trainer.precision={precision}", *CNN])
    assert s["status"] == "completed" and s["final"]["train_loss"] > 0


def test_channels_last(tmp_path):
    from conftest import compose_cfg
    from trainlab.config import validate
    from trainlab.engine.assemble import assemble

    c = assemble(validate(compose_cfg(["trainer.channels_last=true", *CNN])), torch.device("cpu"))
    conv = next(m for m in c.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert run_tiny(tmp_path, ["trainer.channels_last=true", *CNN])["status"] == "completed"


def test_compile_plumbing_with_the_eager_backend(tmp_path):
    s = run_tiny(tmp_path, ["trainer.compile=true", "trainer.compile_backend=eager"])
    assert s["status"] == "completed"
    state = torch.load(tmp_path / "checkpoints" / "best.pt", weights_only=True)["model"]
    assert not any(k.startswith("_orig_mod") for k in state)  # loads into an uncompiled model


@pytest.mark.slow
def test_compile_with_inductor(tmp_path):
    assert run_tiny(tmp_path, ["trainer.compile=true"])["status"] == "completed"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_gpu_training(tmp_path, precision):
    s = run_tiny(tmp_path, ["trainer.device=cuda", f"trainer.precision={precision}", "trainer.channels_last=true",
                            "augment=[flip,crop]", *CNN])
    assert s["status"] == "completed" and s["device"].startswith("cuda")


@pytest.mark.parametrize("placement", ["host", "device", "auto", "loader"])
def test_data_placement(tmp_path, placement):
    from conftest import compose_cfg
    from trainlab.config import validate
    from trainlab.engine.assemble import assemble

    c = assemble(validate(compose_cfg([f"trainer.data_placement={placement}"])), torch.device("cpu"))
    assert c.splits.train.x.device.type == "cpu"
    s = run_tiny(tmp_path, [f"trainer.data_placement={placement}", "trainer.device_data_limit_mb=0",
                            "trainer.loader.workers=0"])
    assert s["status"] == "completed"


def test_auto_placement_threshold():
    from conftest import compose_cfg
    from trainlab.config import validate
    from trainlab.data.splits import load_splits
    from trainlab.engine.assemble import choose_placement, split_megabytes

    spec = validate(compose_cfg(["trainer.device_data_limit_mb=0"]))
    splits = load_splits(spec.dataset)
    assert split_megabytes(splits) > 0
    # data above the limit is read by a DataLoader; below it, it lives on the device
    assert choose_placement(spec.trainer, splits) == "loader"
    roomy = validate(compose_cfg(["trainer.device_data_limit_mb=4096"])).trainer
    assert choose_placement(roomy, splits) == "device"
    host = validate(compose_cfg(["trainer.device_data_limit_mb=0", "trainer.data_placement=host"])).trainer
    assert choose_placement(host, splits) == "host"  # an explicit choice is kept
