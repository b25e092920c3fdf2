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



@LOSSES.option("mse", "Squared error (L2) between the raw scores and the one-hot (or soft) target: "
                      "sum over classes, mean over examples.")
@dataclass
class MSESchema:
    """A regression loss used for classification, to compare with cross-entropy.
    Classification prefers cross-entropy: it only asks that the true class's score beat the
    others by a growing margin, and its gradient (softmax - target) stays large while the
    model is confidently wrong. The squared error asks every score to hit an exact value (1 for
    the true class, 0 for the rest): a correct prediction with a large margin is penalized, one
    badly wrong score dominates the loss with a large gradient, and the network spends its
    capacity fitting values rather than ranking classes, so it trains slower and less stably.
    (Put behind a softmax instead, its gradient vanishes when the softmax saturates on a wrong
    class.) Accuracy is the argmax of the scores, as for the other losses."""

    name: str = "mse"
