"""Inputs and augmentation that work on every shipped dataset: preprocess=raw (0-255 pixels), and
pixel-sized augmentation magnitudes that scale with the image side, so the 8x8 digits learn too."""
import pytest
import torch

from conftest import compose_cfg, run_tiny
from trainlab.config import validate
from trainlab.engine.assemble import assemble

FAST = ["dataset.subset=400", "trainer.epochs=6", "trainer.batch_size=32", "trainer.diagnostics=off"]


@pytest.mark.parametrize("augment", ["crop", "cutout", "standard", "heavy"])
def test_pixel_sized_augmentations_learn_on_digits(tmp_path, augment):
    """augment=crop's 4 px padding on 8x8 digits used to leave them at chance (7-11%)."""
    summary = run_tiny(tmp_path, [*FAST, f"augment={augment}"])
    assert summary["best"]["val_acc"] > 0.6, summary["best"]


def test_raw_preprocessing_feeds_0_to_255_pixels():
    spec = validate(compose_cfg(["preprocess=raw", "dataset.subset=64"]))
    c = assemble(spec, torch.device("cpu"))
    x = c.preprocess(c.splits.train.x.float())
    assert x.max().item() == pytest.approx(255.0) and x.min().item() == 0.0
    flat = validate(compose_cfg(["preprocess=raw", "dataset=synthetic", "dataset.shape=[20]"]))
    pre = assemble(flat, torch.device("cpu")).preprocess
    assert pre.scale == 1.0  # flat features are not pixels: unchanged
