"""What a curve detector reports: the `Finding` type shared by curves.py and
generalization.py, and the lenient number parsing both use on metrics rows."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass
class Finding:
    kind: str  # diverged, not_learning, exploding, slow_start, overfitting, underfitting, periodic, noisy_validation
    message: str  # what the curves show, with numbers
    advice: str  # what to try
    step: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def as_float(value) -> float:
    """A metrics-row value as a float; nan when it is missing or not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
