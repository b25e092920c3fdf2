"""Batched augmentation: per-sample draws, seeded by the generator, shapes and labels kept."""
from dataclasses import fields
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from trainlab.data.augment import AUGMENTS, CANONICAL_ORDER, BatchAugment, tta_views
from trainlab.errors import ConfigError

N, C, H, W = 64, 3, 8, 8
NUM_CLASSES = 10
CONF = Path(__file__).resolve().parents[1] / "conf" / "augment"

# settings under which each option visibly changes most samples
VISIBLE = {
    "flip": {},
    "crop": {"padding": 2},
    "scale": {},
    "rotate": {"degrees": 30.0},
    "translate": {"fraction": 0.25},
    "color": {},
    "noise": {},
    "cutout": {"size": 4},
    "mixup": {"alpha": 1.0},
    "cutmix": {},
}
MIXING = {"mixup", "cutmix"}


def images(seed=0, n=N, shape=(C, H, W), dtype=torch.float32):
    return torch.rand((n, *shape), generator=torch.Generator().manual_seed(seed), dtype=dtype)


def labels(seed=0, n=N):
    return torch.randint(0, NUM_CLASSES, (n,), generator=torch.Generator().manual_seed(seed))


def augment(name, x, y, seed=0, num_classes=NUM_CLASSES, **settings):
    pipeline = BatchAugment({name: AUGMENTS[name].schema(**settings)}, num_classes)
    return pipeline(x, y, torch.Generator().manual_seed(seed))


def by_sample(t):
    return t.reshape(t.shape[0], -1)


def distinct_rows(t):
    return torch.unique(by_sample(t), dim=0).shape[0]


def test_every_option_has_a_visible_setting():
    assert sorted(VISIBLE) == AUGMENTS.names() == sorted(CANONICAL_ORDER)


# ---------------------------------------------------------------- all options

@pytest.mark.parametrize("name", sorted(VISIBLE))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_dtype_and_labels(name, dtype):
    x, y = images(dtype=dtype), labels()
    out, out_y = augment(name, x, y, **VISIBLE[name])
    assert out.shape == x.shape and out.dtype == dtype
    if name in MIXING:
        assert out_y.shape == (N, NUM_CLASSES) and out_y.is_floating_point()
        torch.testing.assert_close(out_y.sum(1), torch.ones(N))
    else:
        assert torch.equal(out_y, y)


@pytest.mark.parametrize("name", sorted(VISIBLE))
def test_values_stay_in_unit_range(name):
    out, _ = augment(name, images(), labels(), **VISIBLE[name])
    if name == "noise":  # additive noise leaves the range unless clipped
        assert out.min() < 0 or out.max() > 1
        out, _ = augment(name, images(), labels(), clip=True)
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("name", sorted(VISIBLE))
def test_input_is_not_modified(name):
    x, y = images(), labels()
    x_before, y_before = x.clone(), y.clone()
    augment(name, x, y, **VISIBLE[name])
    assert torch.equal(x, x_before) and torch.equal(y, y_before)


@pytest.mark.parametrize("name", sorted(VISIBLE))
def test_seed_determines_output(name):
    x, y = images(), labels()
    first, first_y = augment(name, x, y, seed=1, **VISIBLE[name])
    again, again_y = augment(name, x, y, seed=1, **VISIBLE[name])
    other, _ = augment(name, x, y, seed=2, **VISIBLE[name])
    assert torch.equal(first, again) and torch.equal(first_y, again_y)
    assert not torch.equal(first, other)


@pytest.mark.parametrize("name", sorted(set(VISIBLE) - MIXING))
def test_each_sample_gets_its_own_draw(name):
    # one image repeated: any difference between outputs comes from the draws
    x = images(n=1).expand(N, C, H, W).contiguous()
    out, _ = augment(name, x, labels(), **VISIBLE[name])
    # flip has only two outcomes; the others draw from a continuum or a grid
    assert distinct_rows(out) >= (2 if name == "flip" else N // 4)


@pytest.mark.parametrize("name", sorted(MIXING))
def test_each_sample_gets_its_own_mixing_weight(name):
    x, y, k = tagged_batch()
    _, soft = augment(name, x, y, num_classes=k, **VISIBLE[name])
    own_weight = soft[torch.arange(N), y]
    assert torch.unique(own_weight).numel() >= N // 4


def test_generator_is_the_only_randomness():
    x, y = images(), labels()
    torch.manual_seed(123)
    first, _ = augment("rotate", x, y, seed=5)
    torch.manual_seed(456)
    again, _ = augment("rotate", x, y, seed=5)
    assert torch.equal(first, again)


# ---------------------------------------------------------------- geometric

def test_flip_p1_is_mirror_and_p0_is_identity():
    x = images()
    assert torch.equal(augment("flip", x, labels(), p=1.0)[0], x.flip(-1))
    assert torch.equal(augment("flip", x, labels(), p=1.0, vertical=True)[0], x.flip(-1).flip(-2))
    assert torch.equal(augment("flip", x, labels(), p=0.0, vertical=True)[0], x)


def test_flip_half_flips_some_samples_whole():
    x = images()
    out, _ = augment("flip", x, labels(), p=0.5)
    flipped = (by_sample(out) == by_sample(x.flip(-1))).all(1)
    kept = (by_sample(out) == by_sample(x)).all(1)
    assert (flipped | kept).all()
    assert 0 < flipped.sum() < N


@pytest.mark.parametrize("mode", ["zeros", "reflect"])
def test_crop_without_padding_is_identity(mode):
    x = images()
    assert torch.equal(augment("crop", x, labels(), padding=0, padding_mode=mode)[0], x)


@pytest.mark.parametrize("mode", ["zeros", "reflect"])
def test_crop_is_a_window_of_the_padded_image(mode):
    x, pad = images(n=16), 2
    out, _ = augment("crop", x, labels(n=16), padding=pad, padding_mode=mode)
    padded = torch.nn.functional.pad(x, (pad,) * 4, mode="constant" if mode == "zeros" else mode)
    offsets = set()
    for i in range(16):
        matches = [(t, l) for t in range(2 * pad + 1) for l in range(2 * pad + 1)
                   if torch.equal(out[i], padded[i, :, t:t + H, l:l + W])]
        assert matches, f"sample {i} is not a window of its padded image"
        offsets.add(matches[0])
    assert len(offsets) > 1


@pytest.mark.parametrize("mode", ["zeros", "reflect"])
def test_fused_pixel_shifts_equal_the_steps_one_after_another(mode):
    """flip + crop + translate run as one gather; applied one by one with the same
    generator (each as its own pipeline, so nothing is fused) they give the same batch."""
    from trainlab.data.augment import FusedPixelShift

    settings = {"flip": {"vertical": True}, "crop": {"padding": 3, "padding_mode": mode},
                "translate": {"fraction": 0.25}}
    pipeline = BatchAugment({k: AUGMENTS[k].schema(**v) for k, v in settings.items()}, NUM_CLASSES)
    assert [type(s) for s in pipeline.stages] == [FusedPixelShift]
    x, y = images(n=32, shape=(C, 8, 6)), labels(n=32)  # non-square: rows and columns kept apart
    fused, _ = pipeline(x, y, torch.Generator().manual_seed(5))
    g, one_by_one = torch.Generator().manual_seed(5), x
    for name in ("flip", "crop", "translate"):
        one_by_one, _ = AUGMENTS[name].build(AUGMENTS[name].schema(**settings[name]), NUM_CLASSES)(one_by_one, y, g)
    assert torch.equal(fused, one_by_one)
    assert not torch.equal(fused, x)


def test_uint8_batches_are_moved_as_bytes_and_come_back_as_unit_floats():
    """The engine hands raw uint8 batches to the augmentation: the result must equal
    augmenting the [0, 1] float images, whatever mix of pixel and value steps runs."""
    raw = torch.randint(0, 256, (N, C, H, W), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    for chosen in (["flip", "crop"], ["flip", "crop", "color", "translate", "cutout"], ["noise"]):
        pipeline = BatchAugment({k: AUGMENTS[k].schema(**VISIBLE[k]) for k in chosen}, NUM_CLASSES)
        from_bytes, _ = pipeline(raw, labels(), torch.Generator().manual_seed(2))
        from_floats, _ = pipeline(raw.float() / 255, labels(), torch.Generator().manual_seed(2))
        assert from_bytes.dtype == torch.float32
        torch.testing.assert_close(from_bytes, from_floats, rtol=0, atol=1e-6)


def test_translate_zero_is_identity_and_shifts_are_whole_pixels():
    x = images()
    assert torch.equal(augment("translate", x, labels(), fraction=0.0)[0], x)
    out, _ = augment("translate", x, labels(), fraction=0.25)
    # whole-pixel shifts copy values: every output pixel is a pixel of x or the zero fill
    source_values = torch.cat([x.flatten(), torch.zeros(1)])
    assert torch.isin(out.flatten(), source_values).all()


def test_scale_and_rotate_with_no_range_are_identity():
    x = images()
    whole = dict(min_area=1.0, max_area=1.0, min_ratio=1.0, max_ratio=1.0)
    torch.testing.assert_close(augment("scale", x, labels(), **whole)[0], x)
    torch.testing.assert_close(augment("rotate", x, labels(), degrees=0.0)[0], x)


def test_rotate_keeps_non_square_images_unsheared():
    # a round blob centred in a 16x24 image looks the same at every angle; a
    # rotation done in [-1, 1] grid units instead of pixels would squash it
    # into an ellipse (error ~0.27 at 90 degrees), interpolation costs < 0.05
    rows = torch.arange(16.0)[:, None] - 7.5
    cols = torch.arange(24.0)[None, :] - 11.5
    blob = torch.exp(-(rows**2 + cols**2) / 9.0).expand(N, C, 16, 24).contiguous()
    out, _ = augment("rotate", blob, labels(), degrees=180.0)
    assert (out - blob).abs().max() < 0.1


# -------------------------------------------------------------- photometric

def test_color_and_noise_with_zero_strength_are_identity():
    x = images()
    torch.testing.assert_close(augment("color", x, labels(), brightness=0.0, contrast=0.0)[0], x)
    assert torch.equal(augment("noise", x, labels(), std=0.0)[0], x)


def test_color_works_on_flat_input():
    x = images(shape=(20,))
    out, _ = augment("color", x, labels())
    assert out.shape == x.shape and not torch.equal(out, x)


def test_noise_has_the_configured_std_on_any_shape():
    x = images(n=512, shape=(50,))
    out, _ = augment("noise", x, labels(n=512), std=0.1)
    assert abs((out - x).std().item() - 0.1) < 0.005


def test_cutout_zeroes_one_clipped_square():
    x = images() * 0.9 + 0.1  # no zeros before cutout
    size = 4
    out, _ = augment("cutout", x, labels(), size=size, p=1.0)
    zeroed = (out == 0).all(1)  # (N, H, W), same box in every channel
    assert torch.equal(out, x.masked_fill(zeroed[:, None], 0.0))
    rows, cols = zeroed.any(2), zeroed.any(1)
    # the zeroed pixels form a rectangle: rows touched x cols touched
    assert torch.equal(zeroed, rows[:, :, None] & cols[:, None, :])
    area = zeroed.sum((1, 2))
    # clipped at worst to a (size/2) x (size/2) corner, never larger than the square
    assert area.min() >= (size // 2) ** 2 and area.max() == size * size


def test_cutout_p_is_a_per_sample_probability():
    x = images() * 0.9 + 0.1
    assert torch.equal(augment("cutout", x, labels(), p=0.0)[0], x)
    out, _ = augment("cutout", x, labels(), p=0.5)
    hit = (out == 0).any(1).flatten(1).any(1)
    assert 0 < hit.sum() < N


# ---------------------------------------------------------------- mixing

def tagged_batch(n=N):
    """Constant images whose value names their sample: sample i is i / n everywhere.

    With n = 64 and 8x8 images every value and every area fraction is an exact
    binary float, so the source of each output pixel can be read back exactly.
    """
    x = (torch.arange(n, dtype=torch.float32) / n).view(n, 1, 1, 1).expand(n, C, H, W).contiguous()
    return x, torch.arange(n), n


def test_mixup_labels_follow_the_pixel_mix():
    x, y, k = tagged_batch()
    out, soft = augment("mixup", x, y, num_classes=k, alpha=1.0)
    torch.testing.assert_close(soft.sum(1), torch.ones(N))
    # each output pixel is sum_c weight_c * value_c, with the label weights
    expected = soft @ (torch.arange(N, dtype=torch.float32) / N)
    torch.testing.assert_close(out[:, 0, 0, 0], expected)
    assert torch.equal(out, out[:, :1, :1, :1].expand_as(out))  # one lambda per sample
    assert (soft > 0).sum(1).max() <= 2  # at most two sources


def test_mixup_accepts_flat_and_soft_input():
    x, soft_in = images(shape=(20,)), torch.softmax(torch.randn(N, NUM_CLASSES), 1)
    out, soft = augment("mixup", x, soft_in)
    assert out.shape == x.shape
    torch.testing.assert_close(soft.sum(1), torch.ones(N))


def test_cutmix_label_weight_is_the_pasted_area():
    x, y, k = tagged_batch()
    out, soft = augment("cutmix", x, y, num_classes=k)
    source = (out[:, 0] * N).round().long()  # (N, H, W): which sample each pixel came from
    assert torch.equal(out, (source.float() / N)[:, None].expand_as(out))  # pixels copied, not blended
    pixel_share = torch.zeros(N, k).scatter_add_(1, source.flatten(1), torch.ones(N, H * W)) / (H * W)
    assert torch.equal(soft, pixel_share)
    pasted = source != torch.arange(N)[:, None, None]
    # the pasted pixels form a box, and some samples got one
    assert torch.equal(pasted, pasted.any(2)[:, :, None] & pasted.any(1)[:, None, :])
    assert pasted.any()


def test_mixup_and_cutmix_together_pick_one_per_batch():
    x, y, k = tagged_batch()
    pipeline = BatchAugment({"mixup": AUGMENTS["mixup"].schema(alpha=1.0),
                             "cutmix": AUGMENTS["cutmix"].schema()}, k)
    kinds = set()
    for seed in range(20):
        out, soft = pipeline(x, y, torch.Generator().manual_seed(seed))
        torch.testing.assert_close(soft.sum(1), torch.ones(N))
        constant = torch.equal(out, out[:, :1, :1, :1].expand_as(out))
        kinds.add("mixup" if constant else "cutmix")
    assert kinds == {"mixup", "cutmix"}


# ------------------------------------------------------- pipeline and schemas

def test_pipeline_runs_in_canonical_order():
    selected = {name: AUGMENTS[name].schema() for name in ("cutmix", "noise", "flip", "crop")}
    pipeline = BatchAugment(selected, NUM_CLASSES)
    assert [step.name for step in pipeline.steps] == ["flip", "crop", "noise", "cutmix"]
    assert pipeline.mixes_labels
    both = BatchAugment({name: AUGMENTS[name].schema() for name in ("cutmix", "color", "mixup")}, 10)
    assert [step.name for step in both.steps] == ["color", "mixup+cutmix"]


def test_empty_selection_is_identity():
    x, y = images(), labels()
    pipeline = BatchAugment({}, NUM_CLASSES)
    out, out_y = pipeline(x, y, torch.Generator().manual_seed(0))
    assert torch.equal(out, x) and torch.equal(out_y, y) and not pipeline.mixes_labels


def test_all_options_together():
    selected = {name: AUGMENTS[name].schema() for name in AUGMENTS.names()}
    out, soft = BatchAugment(selected, NUM_CLASSES)(images(), labels(), torch.Generator().manual_seed(0))
    assert out.shape == (N, C, H, W)
    torch.testing.assert_close(soft.sum(1), torch.ones(N))


@pytest.mark.parametrize("name, settings, key", [
    ("flip", {"p": 1.5}, "p"),
    ("crop", {"padding": -1}, "padding"),
    ("crop", {"padding_mode": "wrap"}, "padding_mode"),
    ("scale", {"min_area": 0.5, "max_area": 0.4}, "max_area"),
    ("rotate", {"degrees": -5.0}, "degrees"),
    ("color", {"contrast": 1.5}, "contrast"),
    ("noise", {"std": -0.1}, "std"),
    ("cutout", {"size": 0}, "size"),
    ("mixup", {"alpha": 0.0}, "alpha"),
    ("cutmix", {"alpha": -1.0}, "alpha"),
])
def test_schemas_reject_bad_values(name, settings, key):
    with pytest.raises(ConfigError) as caught:
        AUGMENTS[name].schema(**settings)
    assert caught.value.key == key


def test_unknown_option_is_a_config_error():
    with pytest.raises(ConfigError, match="choose one of"):
        BatchAugment({"blur": object()}, NUM_CLASSES)


@pytest.mark.parametrize("name", sorted(VISIBLE))
def test_check_input_shape(name):
    pipeline = BatchAugment({name: AUGMENTS[name].schema()}, NUM_CLASSES)
    pipeline.check_input_shape((C, H, W))
    if name in ("noise", "mixup", "color"):
        pipeline.check_input_shape((2,))
    else:
        with pytest.raises(ConfigError, match=r"needs image input \(N,C,H,W\); dataset gives \(N,2\)"):
            pipeline.check_input_shape((2,))


def test_check_input_shape_for_combined_mixing_and_reflect_padding():
    both = BatchAugment({"mixup": AUGMENTS["mixup"].schema(), "cutmix": AUGMENTS["cutmix"].schema()}, 10)
    with pytest.raises(ConfigError, match="cutmix needs image input"):
        both.check_input_shape((64,))
    reflect = BatchAugment({"crop": AUGMENTS["crop"].schema(padding=8, padding_mode="reflect")}, 10)
    with pytest.raises(ConfigError, match="smaller than the image"):
        reflect.check_input_shape((1, 8, 8))


# ------------------------------------------------------------------- configs

def test_every_option_ships_a_yaml_with_matching_keys_and_defaults():
    for name in AUGMENTS.names():
        loaded = OmegaConf.to_container(OmegaConf.load(CONF / f"{name}.yaml"))
        assert list(loaded) == [name]
        schema = AUGMENTS[name].schema
        assert set(loaded[name]) == {f.name for f in fields(schema)}
        assert schema(**loaded[name]) == schema()


@pytest.mark.parametrize("preset, options", [
    ("none", []),
    ("standard", ["flip", "crop"]),
    ("heavy", ["flip", "crop", "color", "cutout"]),
])
def test_presets_build(preset, options):
    loaded = OmegaConf.to_container(OmegaConf.load(CONF / f"{preset}.yaml")) or {}
    assert sorted(loaded) == sorted(options)
    selected = {name: AUGMENTS[name].schema(**values) for name, values in loaded.items()}
    if preset == "standard":
        assert selected["crop"].padding is None  # a fraction of the side: 4 px on 32x32, 1 px on 8x8
        from trainlab.data.augment.options import Crop
        assert [Crop(selected["crop"], NUM_CLASSES).padding(s, s) for s in (32, 28, 8)] == [4, 4, 1]
    out, _ = BatchAugment(selected, NUM_CLASSES)(images(), labels(), torch.Generator().manual_seed(0))
    assert out.shape == (N, C, H, W)


# ---------------------------------------------------------- test-time views

def test_tta_flip_views():
    x = images()
    views = tta_views(x, "flip")
    assert len(views) == 2 and torch.equal(views[0], x) and torch.equal(views[1], x.flip(-1))


def test_tta_crop_views_are_corner_shifts():
    x, pad = images(), 2
    views = tta_views(x, "crop", pad=pad)
    assert len(views) == 5 and all(v.shape == x.shape for v in views)
    assert torch.equal(views[0], x)
    # top-left corner window: the image moved down-right by pad, zeros above and left
    assert torch.equal(views[1][..., pad:, pad:], x[..., :-pad, :-pad])
    assert (views[1][..., :pad, :] == 0).all() and (views[1][..., :, :pad] == 0).all()
    # bottom-right corner window: moved up-left
    assert torch.equal(views[4][..., :-pad, :-pad], x[..., pad:, pad:])
    assert all(torch.equal(a, b) for a, b in zip(views, tta_views(x, "crop", pad=pad)))


def test_tta_rejects_unknown_mode_and_flat_input():
    with pytest.raises(ConfigError, match="choose one of flip, crop"):
        tta_views(images(), "rotate")
    with pytest.raises(ConfigError, match="need image input"):
        tta_views(images(shape=(20,)), "flip")


# ------------------------------------------------------------------- device

@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_pipeline_never_syncs_with_the_host():
    selected = {name: AUGMENTS[name].schema() for name in AUGMENTS.names()}
    pipeline = BatchAugment(selected, NUM_CLASSES)
    x, y = images().cuda(), labels().cuda()
    generator = torch.Generator(device="cuda").manual_seed(0)
    pipeline(x, y, generator)  # warm up lazy CUDA initialisation outside the check
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out, soft = pipeline(x, y, generator)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert out.device.type == "cuda" and out.shape == x.shape
    torch.testing.assert_close(soft.sum(1), torch.ones(N, device="cuda"))
    again, _ = pipeline(x, y, torch.Generator(device="cuda").manual_seed(0))
    assert again.shape == x.shape
