"""Batched data augmentation (`augment=`): each option transforms a whole batch on its device.

Why batched: per-sample transforms in DataLoader workers leave a GPU waiting on
Python. Here one call draws a parameter per sample and applies all of them with
a few tensor ops, so a batch that lives on the GPU stays there and the host
never waits on the device (no `.item()`, no Python loop over samples).

Randomness comes only from the `torch.Generator` passed in, never the global
RNG, so a run is reproducible from its seed and resumes exactly from the
generator state saved in its checkpoint. A generator on the batch's device is
fastest; a CPU generator also works (its draws are copied to the device).

Inputs are float images (N, C, H, W) with values in [0, 1], before
normalization; labels are class indices (N,). Mixing options (mixup, cutmix)
return soft targets (N, num_classes) whose rows sum to 1; every other option
hands the labels back untouched. Options that need spatial structure reject
other input shapes in `BatchAugment.check_input_shape`, before training.

Documented decisions:
- `p` is always the probability, per sample, that the transform is applied.
- mixup draws lambda ~ Beta(alpha, alpha) per *sample*, not per batch, so
  every sample gets its own draw like every other option here; the partner is
  a random permutation of the batch (a sample paired with itself is unmixed).
- cutmix draws its box area per sample, centres the box uniformly on the image
  (boxes may be clipped at the border) and weights labels by the area actually
  pasted.
- when both mixup and cutmix are selected, each batch uses one of them, chosen
  with probability 1/2 (decided on the device, without a host sync).
- `tta_views` mode "crop" gives five full-size views: the centre and the four
  corner windows of the zero-padded image, the extremes of what `crop` trains on.

The modules: base (seeded draws, the Augmentation interface), pixels (source maps
and the fused gather of flip/crop/translate), options (the per-sample transforms),
mixing (mixup, cutmix), pipeline (BatchAugment, tta_views). The option schemas are
in trainlab.schemas.augment; importing this package attaches every builder to AUGMENTS.
"""
from trainlab.data.augment.base import Augmentation
from trainlab.data.augment.mixing import Cutmix, Mixing, Mixup, OneMixingPerBatch
from trainlab.data.augment.options import Color, Crop, Cutout, Flip, Noise, Rotate, Scale, Translate
from trainlab.data.augment.pixels import FusedPixelShift, PixelShift
from trainlab.data.augment.pipeline import CANONICAL_ORDER, TTA_MODES, BatchAugment, tta_views
from trainlab.schemas.augment import (AUGMENTS, ColorSchema, CropSchema, CutmixSchema, CutoutSchema, FlipSchema,
                                      MixupSchema, NoiseSchema, RotateSchema, ScaleSchema, TranslateSchema)

__all__ = ["AUGMENTS", "CANONICAL_ORDER", "TTA_MODES", "BatchAugment", "tta_views",
           "Augmentation", "PixelShift", "FusedPixelShift", "Mixing", "OneMixingPerBatch",
           "Flip", "Crop", "Scale", "Rotate", "Translate", "Color", "Noise", "Cutout", "Mixup", "Cutmix",
           "FlipSchema", "CropSchema", "ScaleSchema", "RotateSchema", "TranslateSchema", "ColorSchema",
           "NoiseSchema", "CutoutSchema", "MixupSchema", "CutmixSchema"]
