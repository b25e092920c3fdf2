"""trainer.data_placement=loader and image folders read from disk (dataset.preload=false).

The loader must train on exactly the batches the device path gathers: the same seeded
permutation, the same dropped partial batch, each rank's slice, the same resume point.
"""
import os
import signal

import pytest
import torch

from conftest import compose_cfg, run_tiny
from fakedata import write_image_folder
from test_resume import assert_same_tensors, final_state, metrics_without_time
from trainlab.config import to_schema, validate
from trainlab.data.batches import rank_batches
from trainlab.data.loader import PlannedBatches, read_inputs
from trainlab.data.preprocess import RunningMoments, fit_preprocessor
from trainlab.data.splits import load_splits
from trainlab.engine.assemble import assemble
from trainlab.errors import ConfigError
from trainlab.schemas.dataset import ImageFolderSchema
from trainlab.schemas.preprocess import PREPROCESS

# uint8 images through every stage that draws randomness: shuffling, batched augmentation (on
# the device, after the copy), dropout, EMA and test-time augmentation in the evaluations
IMAGES = ["dataset=synthetic", "dataset.shape=[3,8,8]", "dataset.train_size=200", "dataset.subset=null",
          "arch=cnn", "arch.channels=[4]", "augment=[flip,crop,noise]", "regularizer=dropout",
          "trainer.epochs=2", "trainer.batch_size=16", "trainer.ema.decay=0.9", "trainer.tta=flip"]
LOADER = ["trainer.data_placement=loader"]


@pytest.fixture(scope="module")
def device_run(tmp_path_factory):
    torch.set_num_threads(1)  # as in every test (conftest): the same reduction order, bit for bit
    run_dir = tmp_path_factory.mktemp("device")
    return run_dir, run_tiny(run_dir, [*IMAGES, "trainer.data_placement=device"])


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_run_equals_device_run(tmp_path, device_run, workers):
    device_dir, device_summary = device_run
    summary = run_tiny(tmp_path, [*IMAGES, *LOADER, f"trainer.loader.workers={workers}"])
    assert summary["status"] == "completed"
    a, b = final_state(device_dir), final_state(tmp_path)
    for key in ("model", "optimizer", "ema", "data"):
        assert_same_tensors(a[key], b[key])
    # evaluations (val, EMA, test, TTA) read val/test through loaders: the same numbers
    assert metrics_without_time(device_dir) == metrics_without_time(tmp_path)
    assert summary["test"] == device_summary["test"]


def test_loader_resumes_mid_epoch_bit_identically(tmp_path, monkeypatch):
    args = [*IMAGES, *LOADER, "trainer.loader.workers=2", "trainer.epochs=3"]
    run_tiny(tmp_path / "whole", args)
    import trainlab.engine.loop as loop_mod

    original, steps = loop_mod.Loop._step, [0]

    def step_then_signal(self, x, target):
        out = original(self, x, target)
        steps[0] += 1
        if steps[0] == 11 + 5:  # epoch 2 (of 11 steps: 180 training examples), after its 5th batch
            os.kill(os.getpid(), signal.SIGTERM)
        return out

    monkeypatch.setattr(loop_mod.Loop, "_step", step_then_signal)
    stopped = run_tiny(tmp_path / "split", args)
    monkeypatch.undo()
    assert stopped["status"] == "interrupted" and stopped["signal"] == "SIGTERM"
    assert final_state(tmp_path / "split")["counters"]["batch_in_epoch"] == 5
    resumed = run_tiny(tmp_path / "split", [*args, "resume=true"])
    assert resumed["status"] == "completed" and resumed["steps"] == 33
    a, b = final_state(tmp_path / "whole"), final_state(tmp_path / "split")
    for key in ("model", "optimizer", "ema", "schedule", "data"):
        assert_same_tensors(a[key], b[key])
    assert metrics_without_time(tmp_path / "whole") == metrics_without_time(tmp_path / "split")


def test_workers_stop_promptly_when_the_run_is_collected(tmp_path):
    """A finished run's loaders (train, val, test: 2 workers each) are freed with its Loop, often in
    a garbage-collected cycle; their workers must stop at once, not after a join timeout each."""
    import gc
    import time

    run_tiny(tmp_path, [*IMAGES, *LOADER, "trainer.loader.workers=2", "trainer.epochs=1"])
    started = time.perf_counter()
    gc.collect()
    assert time.perf_counter() - started < 4.0  # about 30 s when the queues are finalized first


def test_batch_sampler_gives_each_rank_its_slice_of_every_global_batch():
    n, per_rank, world = 103, 8, 3  # global batch 24: four full batches, the last 7 examples dropped
    state = torch.Generator().manual_seed(5).get_state()

    def sampled(world, rank, batch, start=0):
        sampler = PlannedBatches()
        sampler.plan(rank_batches(n, batch, world, rank, torch.Generator().set_state(state)), start)
        return list(sampler)

    whole = sampled(1, 0, per_rank * world)
    ranks = [sampled(world, r, per_rank) for r in range(world)]
    assert len(whole) == 4 and all(len(b) == per_rank * world for b in whole)
    for step, global_batch in enumerate(whole):
        slices = [ranks[r][step] for r in range(world)]
        assert all(len(s) == per_rank and s.device.type == "cpu" for s in slices)
        assert torch.equal(torch.cat(slices), global_batch)  # disjoint slices that make up the global batch
    assert len(torch.cat(whole).unique()) == 96
    # a resumed epoch: the same permutation, from batch `start` on
    rest = sampled(world, 1, per_rank, start=3)
    assert len(rest) == 1 and torch.equal(rest[0], ranks[1][3])
    # fewer examples than one batch: one batch of all of them, as on the device path
    sampler = PlannedBatches()
    sampler.plan(rank_batches(5, 16, 1, 0, torch.Generator().manual_seed(0)))
    assert [sorted(b.tolist()) for b in sampler] == [[0, 1, 2, 3, 4]]


# -- image folders read from disk ------------------------------------------------------------

@pytest.fixture(scope="module")
def image_root(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("images"), per_class=14)


def folder_cfg(root, **kw):
    return to_schema(ImageFolderSchema, {"name": "image_folder", "root": str(root), "image_size": 12, **kw}, "dataset")


@pytest.mark.parametrize("carving", [{}, {"subset": 20}, {"cv": {"folds": 3, "fold": 1}}, {"val_split": 0.3}])
def test_lazy_folder_splits_like_the_preloaded_one_without_decoding(image_root, monkeypatch, carving):
    from trainlab.data.image_files import ImageFiles

    preloaded = load_splits(folder_cfg(image_root, preload=True, **carving))
    monkeypatch.setattr(ImageFiles, "decode", lambda self, path: pytest.fail("decoded while splitting"))
    lazy = load_splits(folder_cfg(image_root, preload=False, **carving))
    monkeypatch.undo()
    for name in ("train", "val", "test"):
        a, b = getattr(preloaded, name), getattr(lazy, name)
        assert isinstance(b.x, ImageFiles) and len(a) == len(b) and b.x.shape == a.x.shape
        assert torch.equal(a.y, b.y)
        assert torch.equal(a.x, b.x[:])  # the same pixels, decoded on demand


def test_auto_preload_follows_the_size_limit(image_root):
    from trainlab.data.image_files import is_lazy

    assert not is_lazy(load_splits(folder_cfg(image_root)).train.x)  # 42 tiny images: preloaded
    assert is_lazy(load_splits(folder_cfg(image_root, preload_limit_mb=0)).train.x)


@pytest.mark.parametrize("name,extra", [("center", {"mode": "per_channel"}), ("center", {"mode": "mean_image"}),
                                        ("standardize", {"mode": "per_channel"}), ("minmax", {}),
                                        ("pca", {"components": 7}), ("whiten", {"method": "zca"})])
def test_lazy_statistics_stream_the_training_split(image_root, name, extra):
    """Fitted from decoded chunks by loader workers: exactly the in-memory fit, train split only."""
    cfg = to_schema(PREPROCESS[name].schema, {"name": name, **extra}, "preprocess")
    lazy = load_splits(folder_cfg(image_root, preload=False)).train
    loader = validate(compose_cfg(["trainer.loader.workers=2"])).trainer.loader
    streamed = fit_preprocessor(cfg, lazy.x, lambda batches: read_inputs(lazy, batches, loader))
    in_memory = fit_preprocessor(cfg, load_splits(folder_cfg(image_root, preload=True)).train.x)
    assert_same_tensors(streamed.state_dict(), in_memory.state_dict())


def test_running_moments_merge_chunks_exactly():
    x = torch.randn(500, 6, dtype=torch.float64) * torch.arange(1, 7) + 3
    acc, cov = RunningMoments(), RunningMoments(covariance=True)
    for chunk in x.split(77):
        acc.update(chunk)
        cov.update(chunk)
    assert torch.allclose(acc.mean, x.mean(0)) and torch.allclose(acc.variance(), x.var(0))
    assert torch.allclose(cov.variance(), torch.cov(x.T))


def test_lazy_image_folder_trains_and_matches_the_preloaded_run(tmp_path, image_root):
    args = ["dataset=image_folder", f"dataset.root={image_root}", "dataset.image_size=12", "dataset.subset=null",
            "arch=cnn", "arch.channels=[4]", "augment=[flip,crop]", "preprocess=standardize",
            "trainer.epochs=2", "trainer.batch_size=8", "trainer.loader.workers=2"]
    lazy = run_tiny(tmp_path / "lazy", [*args, "dataset.preload=false"])  # auto placement: the loader
    assert lazy["status"] == "completed"
    preloaded = run_tiny(tmp_path / "preloaded", [*args, "dataset.preload=true"])  # auto: on the device
    a, b = final_state(tmp_path / "lazy"), final_state(tmp_path / "preloaded")
    for key in ("model", "preprocess", "data"):
        assert_same_tensors(a[key], b[key])


def test_lazy_folder_rejects_device_and_host_placement(tmp_path, image_root):
    for placement in ("device", "host"):
        with pytest.raises(ConfigError, match="trainer.data_placement.*dataset.preload=true"):
            run_tiny(tmp_path / placement, ["dataset=image_folder", f"dataset.root={image_root}",
                                            "dataset.preload=false", f"trainer.data_placement={placement}"])


# -- choosing the placement, options, bad values -----------------------------------------------

def test_auto_picks_the_loader_above_the_device_limit(image_root):
    assert assemble(validate(compose_cfg([])), torch.device("cpu")).placement == "device"
    big = assemble(validate(compose_cfg(["trainer.device_data_limit_mb=0"])), torch.device("cpu"))
    assert big.placement == "loader"
    lazy = assemble(validate(compose_cfg(["dataset=image_folder", f"dataset.root={image_root}",
                                          "dataset.preload=false"])), torch.device("cpu"))
    assert lazy.placement == "loader"


FOLDER = ["dataset=image_folder", "dataset.root={root}", "dataset.image_size=8", "dataset.subset=null"]


@pytest.mark.parametrize("extra", [
    ["trainer.data_placement=loader", "trainer.loader.workers=1", "trainer.loader.persistent_workers=false",
     "trainer.loader.prefetch_factor=1"],
    ["trainer.data_placement=loader", "trainer.loader.workers=null", "trainer.loader.prefetch_factor=4"],
    ["trainer.device_data_limit_mb=0", "trainer.loader.workers=0"],  # auto: the loader
    [*FOLDER, "dataset.preload=auto"],
    [*FOLDER, "dataset.preload=true", "trainer.data_placement=host"],
    [*FOLDER, "dataset.preload=false", "trainer.loader.workers=0"],
    [*FOLDER, "dataset.preload_limit_mb=0", "trainer.data_placement=loader"],  # auto preload: too big, from disk
], ids=["loader-options", "default-workers", "auto-loader", "preload-auto", "preload-true", "preload-false",
        "preload-limit"])
def test_option_trains(tmp_path, image_root, extra):
    summary = run_tiny(tmp_path, [e.replace("{root}", str(image_root)) for e in extra])
    assert summary["status"] == "completed"


@pytest.mark.parametrize("override,key", [
    ("trainer.data_placement=disk", "trainer.data_placement"),
    ("trainer.loader.workers=-1", "trainer.loader.workers"),
    ("trainer.loader.prefetch_factor=0", "trainer.loader.prefetch_factor"),
    ("trainer.loader.persistent_workers=sometimes", "trainer.loader.persistent_workers"),
    ("+trainer.loader.threads=2", "trainer.loader.threads"),
    ("dataset.preload=sometimes", "dataset.preload"),
    ("dataset.preload_limit_mb=-1", "dataset.preload_limit_mb"),
])
def test_bad_values_are_one_line_errors(image_root, override, key):
    base = ["dataset=image_folder", f"dataset.root={image_root}"] if override.startswith("dataset") else []
    with pytest.raises(ConfigError) as err:
        validate(compose_cfg([*base, override]))
    assert str(err.value).startswith(key) and "\n" not in str(err.value)
