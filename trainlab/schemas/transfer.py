"""transfer: start from saved weights, freeze by name, fine-tune the rest slower (one schema).

conf/transfer/default.yaml is generated from it; the loading and freezing is
trainlab.engine.transfer.apply_transfer.
"""
import os
from dataclasses import dataclass, field

from trainlab.errors import check


@dataclass
class TransferSchema:
    """Transfer learning / fine-tuning."""

    weights: str | None = None     # a trainlab checkpoint or state-dict file to start from (null = train from scratch)
    freeze: list = field(default_factory=list)  # keep fixed: "backbone" (all but the head) or parameter-name
                                   # patterns (fnmatch), e.g. ["0.*", "3.*"]
    backbone_lr_mult: float = 1.0  # lr multiplier for everything but the classifier head (0.1 is a common start)
    strict: bool = False           # fail unless every non-head tensor matches
    reset_head: bool = False       # fresh head even when the class count matches (a new task)

    def __post_init__(self):
        if self.weights is not None:
            path = os.path.expanduser(str(self.weights))
            what = "a folder" if os.path.isdir(path) else "no such file"
            check(os.path.isfile(path), "weights", self.weights, f"an existing checkpoint or state-dict file ({what})")
        check(self.backbone_lr_mult > 0, "backbone_lr_mult", self.backbone_lr_mult, "a positive multiplier")
