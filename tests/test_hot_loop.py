"""No host synchronization inside the per-step loop: values are read once per evaluation."""
import sys

import pytest
import torch

from conftest import compose_cfg
from trainlab.config import validate
from trainlab.engine.assemble import assemble
from trainlab.engine.loop import EpochSums, Loop

READS = ["item", "tolist", "__bool__", "__float__", "__int__", "numpy"]

CONFIGS = [
    ["optimizer=momentum"],
    ["optimizer=sgd", "regularizer=[l2,dropout,maxnorm]", "augment=[flip,crop,noise,cutout,mixup]",
     "trainer.ema.decay=0.9", "optimizer.clip_norm=1.0", "schedule=cosine", "norm=batchnorm"],
    ["arch=cnn", "arch.channels=[4]", "optimizer=nesterov", "augment=[scale,rotate,translate,color,cutmix]",
     "schedule=onecycle", "loss=hinge", "regularizer=[elastic_net,weight_decay]"],
]


def build_loop(overrides, device="cpu"):
    spec = validate(compose_cfg(["dataset.subset=64", "trainer.batch_size=16", *overrides,
                                 f"trainer.device={device}"]))
    c = assemble(spec, torch.device(device))
    return Loop(c, spec.trainer, torch.device(device))


def count_reads(monkeypatch) -> list[str]:
    """From now on every host read of a tensor (READS) is recorded, by name, in the returned list."""
    calls = []
    for name in READS:
        original = getattr(torch.Tensor, name)

        def counting(self, *a, _name=name, _original=original, **k):
            calls.append(_name)
            return _original(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, counting)
    return calls


@pytest.mark.parametrize("overrides", CONFIGS, ids=["plain", "regularized", "cnn"])
def test_train_epoch_reads_nothing_back_from_tensors(monkeypatch, overrides):
    loop = build_loop(overrides)
    calls = count_reads(monkeypatch)
    sums = EpochSums.zeros(loop.device)
    assert loop.train_epoch(sums) == 4
    assert calls == []
    monkeypatch.undo()
    assert sums.sums[3].item() == 64  # the reads happen here, once per evaluation


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_path_reads_nothing_back_per_step(monkeypatch, workers):
    """trainer.data_placement=loader: trainlab reads nothing back either. The one read left is
    DataLoader's own: when an iterator starts (each epoch, or once with persistent workers) it draws
    its workers' base seed from the loader's CPU generator, never from a device value."""
    loop = build_loop([*CONFIGS[1], "trainer.data_placement=loader", f"trainer.loader.workers={workers}"])
    calls = []
    for name in READS:
        original = getattr(torch.Tensor, name)

        def counting(self, *a, _name=name, _original=original, **k):
            calls.append((_name, sys._getframe(1).f_code.co_filename))
            return _original(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, counting)
    sums = EpochSums.zeros(loop.device)
    for epoch in range(2):
        assert loop.train_epoch(sums) == 4
    monkeypatch.undo()
    assert all(name == "item" and "torch/utils/data" in where for name, where in calls), calls
    assert len(calls) <= 2  # at most one per epoch, however many steps
    assert sums.sums[3].item() == 128


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_loader_path_syncs_once_per_epoch_on_cuda():
    """The loader's one sync per epoch: the permutation, drawn on the GPU, copied to the host for
    the batch sampler. Batches are pinned and copied with non_blocking: no sync per step."""
    import warnings

    loop = build_loop(["optimizer=momentum", "trainer.data_placement=loader", "trainer.loader.workers=2"],
                      device="cuda")
    sums = EpochSums.zeros(loop.device)
    loop.train_epoch(sums)  # warm-up: lazy init may sync
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loop.train_epoch(sums)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert len([w for w in caught if "synchroniz" in str(w.message)]) <= 1


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("overrides", CONFIGS, ids=["plain", "regularized", "cnn"])
def test_no_cuda_sync_in_the_hot_loop(overrides):
    loop = build_loop(overrides, device="cuda")
    sums = EpochSums.zeros(loop.device)
    loop.train_epoch(sums)  # warm-up: lazy init may sync
    torch.cuda.set_sync_debug_mode("error")
    try:
        loop.train_epoch(sums)
    finally:
        torch.cuda.set_sync_debug_mode(0)
