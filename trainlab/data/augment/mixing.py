"""Label mixing: mixup and cutmix blend each sample (and its label) with a partner.

They return soft targets (N, num_classes) whose rows sum to 1, and always run
last in the pipeline so they blend images that are already fully augmented.
"""
from abc import abstractmethod

import torch
from torch import Tensor

from trainlab.data.augment.base import Augmentation, beta, box_mask, per_sample, randint
from trainlab.schemas.augment import AUGMENTS, CutmixSchema, MixupSchema


def _soft_targets(y: Tensor, num_classes: int) -> Tensor:
    if y.is_floating_point():  # already soft
        return y
    # scatter rather than F.one_hot: no range check, hence no host sync
    return torch.zeros(y.shape[0], num_classes, device=y.device).scatter_(1, y[:, None], 1.0)


class Mixing(Augmentation):
    """Blend each sample with a partner from a shuffled copy of the batch.

    Subclasses only say how much of its own sample each output keeps: per
    element (`keep_pixels`, broadcastable to x) and for the label (`keep_label`, (N,)).
    """

    mixes_labels = True

    def __init__(self, num_classes: int):
        self.num_classes = num_classes

    @abstractmethod
    def weights(self, x: Tensor, g: torch.Generator) -> tuple[Tensor, Tensor]:
        """(keep_pixels, keep_label) for this batch."""

    def __call__(self, x, y, generator):
        keep_pixels, keep_label = self.weights(x, generator)
        partner = torch.randperm(x.shape[0], generator=generator, device=generator.device).to(x.device)
        mixed_x = keep_pixels * x + (1 - keep_pixels) * x[partner]
        soft = _soft_targets(y, self.num_classes)
        keep = keep_label.to(soft.dtype)[:, None]
        return mixed_x, keep * soft + (1 - keep) * soft[partner]


@AUGMENTS.builder("mixup")
class Mixup(Mixing):
    """x = lam * x + (1 - lam) * partner, lam ~ Beta(alpha, alpha) drawn per sample."""

    name = "mixup"

    def __init__(self, cfg: MixupSchema, num_classes: int):
        super().__init__(num_classes)
        self.cfg = cfg

    def weights(self, x, g):
        lam = beta(g, self.cfg.alpha, x.shape[0], x.device)
        return per_sample(lam, x), lam


@AUGMENTS.builder("cutmix")
class Cutmix(Mixing):
    """Paste a box of the partner; the label weight is the area actually pasted.

    lam ~ Beta(alpha, alpha) per sample sets the box sides to sqrt(1 - lam) of
    the image's; the box centre is uniform on the image and the part outside
    is clipped, which is why labels follow the pasted mask, not lam.
    """

    name, needs_image = "cutmix", True

    def __init__(self, cfg: CutmixSchema, num_classes: int):
        super().__init__(num_classes)
        self.cfg = cfg

    def weights(self, x, g):
        n, _, h, w = x.shape
        dev = x.device
        side = (1.0 - beta(g, self.cfg.alpha, n, dev)).sqrt()
        box_h, box_w = (side * h).round().long(), (side * w).round().long()
        top = randint(g, h, n, dev) - box_h // 2
        left = randint(g, w, n, dev) - box_w // 2
        pasted = box_mask(h, w, top, top + box_h, left, left + box_w)
        keep_label = 1.0 - pasted.float().mean(dim=(1, 2))
        return (~pasted)[:, None].to(x.dtype), keep_label


class OneMixingPerBatch(Mixing):
    """Several mixing options selected: each batch uses one, chosen uniformly.

    Every option draws its weights and the choice is made on the device with
    index_select (a Python `if` on a device coin would sync with the host).
    Mixing ops are cheap next to a forward pass, so the unused draw costs little.
    """

    def __init__(self, options: list[Mixing], num_classes: int):
        super().__init__(num_classes)
        self.options = options
        self.name = "+".join(o.name for o in options)
        self.needs_image = any(o.needs_image for o in options)

    def check_input_shape(self, input_shape):
        for option in self.options:
            option.check_input_shape(input_shape)

    def weights(self, x, g):
        drawn = [option.weights(x, g) for option in self.options]
        pick = randint(g, len(self.options), 1, x.device)
        pixels = torch.stack(torch.broadcast_tensors(*[p for p, _ in drawn]))
        labels = torch.stack([lab for _, lab in drawn])
        return pixels.index_select(0, pick)[0], labels.index_select(0, pick)[0]
