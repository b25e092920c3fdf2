"""Losses by name (`loss=`): softmax cross-entropy, the multiclass SVM hinge and the squared error.

Targets are class indices (N,) or soft label rows (N, C) from mixup/cutmix;
every loss accepts either.
"""
import torch
import torch.nn.functional as F
from torch import nn

from trainlab.schemas.loss import LOSSES, CrossEntropySchema, HingeSchema, MSESchema


@LOSSES.builder("cross_entropy")
class CrossEntropy(nn.Module):
    def __init__(self, cfg: CrossEntropySchema):
        super().__init__()
        self.smoothing = cfg.label_smoothing

    def forward(self, scores, target):
        return F.cross_entropy(scores, target, label_smoothing=self.smoothing)

    def initial_loss(self, num_classes: int) -> float:
        """Loss of a model that guesses uniformly: ln(C) whatever the smoothing."""
        return float(torch.log(torch.tensor(float(num_classes))))


@LOSSES.builder("hinge")
class MulticlassHinge(nn.Module):
    """Weston-Watkins multiclass SVM: sum over wrong classes j of max(0, s_j - s_y + margin)."""

    has_kinks = True

    def __init__(self, cfg: HingeSchema):
        super().__init__()
        self.margin, self.squared = cfg.margin, cfg.squared

    def forward(self, scores, target):
        num_classes = scores.shape[1]
        soft = target if target.dim() == 2 else F.one_hot(target, num_classes).to(scores.dtype)
        # For each possible true class c: hinge terms of every j != c; soft labels weight the classes.
        margins = scores.unsqueeze(1) - scores.unsqueeze(2) + self.margin  # [n, c, j] = s_j - s_c + margin
        eye = torch.eye(num_classes, device=scores.device, dtype=torch.bool)
        terms = margins.clamp(min=0).masked_fill(eye, 0.0)
        if self.squared:
            terms = terms**2
        per_class = terms.sum(dim=2)  # [n, c]
        return (soft * per_class).sum(dim=1).mean()

    def initial_loss(self, num_classes: int) -> float:
        """All scores near zero: every wrong class contributes the margin."""
        return (num_classes - 1) * (self.margin**2 if self.squared else self.margin)



@LOSSES.builder("mse")
class SquaredError(nn.Module):
    """sum over classes of (s_c - t_c)^2, averaged over the batch; t is one-hot or a soft label row."""

    def __init__(self, cfg: MSESchema):
        super().__init__()

    def forward(self, scores, target):
        soft = target if target.dim() == 2 else F.one_hot(target, scores.shape[1]).to(scores.dtype)
        return (scores - soft).pow(2).sum(dim=1).mean()

    def initial_loss(self, num_classes: int) -> float:
        """All scores near zero: the one-hot target's single 1 is missed, the zeros are hit."""
        return 1.0
