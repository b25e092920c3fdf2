"""Splits, train-only preprocessing (the leakage guard), and batching."""
import numpy as np
import pytest
import torch

from trainlab.config import to_schema
from trainlab.errors import ConfigError
from trainlab.data.batches import epoch_batches
from trainlab.data.datasets import DATASETS, RawData
from trainlab.data.preprocess import PREPROCESS, fit_preprocessor, restore_preprocessor, to_float
from trainlab.data.splits import cv_fold, load_splits, make_splits
from trainlab.schemas.dataset import DigitsSchema, MnistSchema


def digits_cfg(**kw):
    return to_schema(DigitsSchema, {"name": "digits", **kw}, "dataset")


def preprocess_cfg(name, **kw):
    return to_schema(PREPROCESS[name].schema, {"name": name, **kw}, "preprocess")


def test_val_is_carved_from_train_and_test_is_untouched():
    splits = load_splits(digits_cfg(val_split=0.25))
    raw = DATASETS["digits"].build(digits_cfg())
    assert len(splits.train) + len(splits.val) == len(raw.train_y)
    assert torch.equal(splits.test.x, raw.test_x)
    # stratified: every class is in val in about the train proportion
    counts = torch.bincount(splits.val.y, minlength=10).float()
    assert counts.min() >= 0.6 * counts.mean()
    # disjoint: no training image appears in val
    train_rows = {tuple(r.tolist()) for r in splits.train.x.flatten(1)}
    assert not any(tuple(r.tolist()) in train_rows for r in splits.val.x.flatten(1))


def test_split_is_fixed_by_split_seed_not_run_seed():
    a, b = load_splits(digits_cfg()), load_splits(digits_cfg())
    assert torch.equal(a.val.y, b.val.y)
    c = load_splits(digits_cfg(split_seed=1))
    assert not torch.equal(a.val.x, c.val.x)


def test_subset_is_stratified_and_exact():
    splits = load_splits(digits_cfg(subset=100))
    assert len(splits.train) == 100
    assert torch.bincount(splits.train.y, minlength=10).min() >= 9


def test_cv_folds_are_disjoint_stratified_and_cover_train():
    y = torch.arange(10).repeat(30)
    vals = [set(cv_fold(y, 5, i, 0)[1].tolist()) for i in range(5)]
    assert set().union(*vals) == set(range(300))
    assert sum(len(v) for v in vals) == 300
    for v in vals:
        assert np.bincount(y[list(v)].numpy()).tolist() == [6] * 10
    splits = load_splits(digits_cfg(cv={"folds": 4, "fold": 2}))
    assert len(splits.val) == pytest.approx(len(splits.train) / 3, rel=0.05)


def make_raw(train_x, test_x):
    y = torch.arange(len(train_x)) % 2
    return RawData(train_x, y, test_x, torch.arange(len(test_x)) % 2, ["a", "b"])


@pytest.mark.parametrize("name,extra", [("center", {"mode": "scalar"}), ("center", {"mode": "per_channel"}),
                                        ("center", {"mode": "mean_image"}), ("standardize", {"mode": "per_channel"}),
                                        ("standardize", {"mode": "per_feature"}), ("minmax", {}),
                                        ("pca", {"components": 5}), ("pca", {"whiten": True}),
                                        ("whiten", {"method": "zca"}), ("whiten", {"method": "pca", "components": 6})])
def test_leakage_guard_statistics_ignore_val_and_test(name, extra):
    """Changing val/test data must not change the fitted statistics."""
    g = torch.Generator().manual_seed(0)
    train_x = torch.rand(200, 2, 3, 3, generator=g)
    cfg = preprocess_cfg(name, **extra)
    dcfg = digits_cfg(val_split=0.2)
    stats = []
    for scale in (1.0, 100.0):
        test_x = scale * torch.rand(50, 2, 3, 3, generator=g) + scale
        splits = make_splits(make_raw(train_x.clone(), test_x), dcfg)
        splits.val.x.mul_(scale).add_(scale)  # val is part of train's raw tensor: perturb only the carved copy
        stats.append(fit_preprocessor(cfg, splits.train.x).state_dict())
    for key in stats[0]:
        assert torch.equal(stats[0][key], stats[1][key]), key


def test_standardize_and_whiten_do_what_they_say():
    g = torch.Generator().manual_seed(1)
    mix = torch.tensor([[2.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 0.2]])
    x = (torch.randn(4000, 3, generator=g) @ mix) + torch.tensor([5.0, -2.0, 1.0])
    std = fit_preprocessor(preprocess_cfg("standardize", mode="per_feature", epsilon=0.0), x)(x)
    assert torch.allclose(std.mean(0), torch.zeros(3), atol=1e-4)
    assert torch.allclose(std.std(0), torch.ones(3), atol=1e-3)
    for method in ("zca", "pca"):
        cfg = preprocess_cfg("whiten", method=method, epsilon=0.0)
        w = fit_preprocessor(cfg, x)(x)
        cov = torch.cov(w.T)
        assert torch.allclose(cov, torch.eye(3), atol=1e-3), method
    pca = fit_preprocessor(preprocess_cfg("pca", components=2), x)
    out = pca(x)
    assert out.shape == (4000, 2) and pca.output_shape() == (2,)
    assert out[:, 0].var() >= out[:, 1].var()
    mm = fit_preprocessor(preprocess_cfg("minmax"), x)(x)
    assert torch.allclose(mm.amin(0), -torch.ones(3)) and torch.allclose(mm.amax(0), torch.ones(3))


def test_preprocessor_restores_from_checkpoint_state():
    x = torch.rand(100, 1, 4, 4)
    cfg = preprocess_cfg("whiten", method="zca")
    fitted = fit_preprocessor(cfg, x)
    restored = restore_preprocessor(cfg, (1, 4, 4), fitted.state_dict())
    assert torch.equal(fitted(x), restored(x))


def test_uint8_images_become_unit_floats():
    x = torch.tensor([0, 128, 255], dtype=torch.uint8)
    assert torch.allclose(to_float(x), torch.tensor([0.0, 128 / 255, 1.0]))


def test_epoch_batches_are_a_seeded_permutation():
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    b1, b2 = epoch_batches(103, 10, g1), epoch_batches(103, 10, g2)
    assert len(b1) == 10 and all(len(b) == 10 for b in b1)  # the partial last batch is dropped
    assert all(torch.equal(a, b) for a, b in zip(b1, b2))
    assert len(set(torch.cat(b1).tolist())) == 100
    assert not torch.equal(torch.cat(epoch_batches(103, 10, g1)), torch.cat(b1))  # a new order next epoch


def test_mnist_loads_from_a_temp_copy_as_uint8(data_root):
    splits = load_splits(to_schema(MnistSchema, {"name": "mnist", "root": str(data_root), "download": True}, "dataset"))
    assert splits.train.x.dtype == torch.uint8 and splits.input_shape == (1, 28, 28)
    assert len(splits.train) + len(splits.val) == 60000 and len(splits.test) == 10000


def test_engine_fits_preprocessing_on_train_only(tmp_path, monkeypatch):
    """End to end: a run whose val and test inputs are wildly different saves the same statistics."""
    from dataclasses import replace

    from conftest import run_tiny

    original = DATASETS["digits"].build  # the loader itself: the entry would look up the patched one

    def with_val(scale):
        def build(cfg):
            raw = original(cfg)
            n = len(raw.train_y) // 5
            return replace(raw, train_x=raw.train_x[n:], train_y=raw.train_y[n:], val_x=raw.train_x[:n] * scale + scale,
                           val_y=raw.train_y[:n], test_x=raw.test_x * scale + scale)
        return build

    saved = []
    for i, scale in enumerate((1.0, 50.0)):
        monkeypatch.setitem(DATASETS._builders, "digits", with_val(scale))
        run_tiny(tmp_path / str(i), ["preprocess=whiten"])
        saved.append(torch.load(tmp_path / str(i) / "checkpoints" / "last.pt", weights_only=True)["preprocess"])
    assert saved[0].keys() == saved[1].keys()
    for key in saved[0]:
        assert torch.equal(saved[0][key], saved[1][key]), key


def test_stratified_splits_are_index_for_index_scikit_learns():
    """trainlab.data.stratify replaces scikit-learn on the default path (an import of ~1 s): the same
    splits, subsets and CV folds as train_test_split / StratifiedKFold, for many label arrays."""
    sk = pytest.importorskip("sklearn.model_selection")
    from trainlab.data.stratify import shuffle_split, stratified_folds, stratified_shuffle_split, test_count

    rng = np.random.default_rng(0)
    for _ in range(60):
        n, c = int(rng.integers(40, 300)), int(rng.integers(2, 11))
        y = rng.integers(0, c, n)
        y[:3 * c] = np.repeat(np.arange(c), 3)
        rng.shuffle(y)
        seed, held = int(rng.integers(0, 10_000)), int(rng.integers(c, n - c))
        for ours, theirs in [(stratified_shuffle_split(y, held, seed),
                              sk.train_test_split(np.arange(n), test_size=held, stratify=y, random_state=seed)),
                             (stratified_shuffle_split(y, test_count(n, 0.25), seed),
                              sk.train_test_split(np.arange(n), test_size=0.25, stratify=y, random_state=seed)),
                             (shuffle_split(n, held, seed), sk.train_test_split(np.arange(n), test_size=held, random_state=seed))]:
            assert all(np.array_equal(a, b) for a, b in zip(ours, theirs))
        folds = int(rng.integers(2, 4))
        fold_of = stratified_folds(y, folds, seed)
        for i, (_, val) in enumerate(sk.StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(n), y)):
            assert np.array_equal(val, np.flatnonzero(fold_of == i))


def test_embedded_digits_are_checked_and_need_no_scikit_learn(tmp_path, monkeypatch):
    import subprocess
    import sys

    code = "import sys; from trainlab.data.datasets import load_digits, DigitsSchema; r = load_digits(DigitsSchema()); " \
           "print(len(r.train_y), len(r.test_y), 'sklearn' in sys.modules, 'scipy' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.stdout.split() == ["1437", "360", "False", "False"], res.stderr
    from trainlab.data import datasets

    damaged = tmp_path / "digits.npz"
    with np.load(datasets.DIGITS_FILE) as data:
        images = data["images"].copy()
        images[0, 0, 0] ^= 1
        np.savez(damaged, images=images, targets=data["targets"])
    monkeypatch.setattr(datasets, "DIGITS_FILE", damaged)
    datasets._digits_arrays.cache_clear()
    try:
        with pytest.raises(ConfigError, match="checksum"):
            datasets._digits_arrays()
    finally:
        datasets._digits_arrays.cache_clear()
