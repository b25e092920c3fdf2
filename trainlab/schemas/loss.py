"""loss=: one schema per option (the builders are in trainlab.optim.losses)."""
from dataclasses import dataclass

from trainlab.errors import check
from trainlab.registry import Registry

LOSSES = Registry("loss", builders="trainlab.optim.losses")


@LOSSES.option("cross_entropy", "Softmax cross-entropy.")
@dataclass
class CrossEntropySchema:
    name: str = "cross_entropy"
    label_smoothing: float = 0.0  # mass moved from the true class to a uniform spread over all classes

    def __post_init__(self):
        check(0 <= self.label_smoothing < 1, "label_smoothing", self.label_smoothing, "a fraction in [0, 1)")


@LOSSES.option("hinge", "Multiclass SVM hinge loss (Weston-Watkins): sum over wrong classes of max(0, s_j - s_y + margin).")
@dataclass
class HingeSchema:
    name: str = "hinge"
    margin: float = 1.0    # required score gap between the true class and every other class
    squared: bool = False  # squared hinge (L2-SVM) instead of the plain one

    def __post_init__(self):
        check(self.margin > 0, "margin", self.margin, "a positive number")
