"""Derived table metrics: numbers computed from a job's metrics.csv curve rather than read from it.

    gap                     final train_eval_acc - val_acc (eval-mode train sample vs val)
    epochs_to(val_acc>=0.9) the epoch of the first evaluation that reaches the threshold
    steps_to(val_loss<=0.3) the same, in optimizer steps
    auc(val_acc)            the mean of a column over all evaluations (step 0 included): learning speed
    best(train_eval_acc)    a column's best value over the evaluations (max for accuracies, else min)
    final(train_eval_loss)  a column's last value (the same as metrics:<column>)

A threshold on an accuracy column may be written as a fraction (0.9) or in percent (90 or 90%).
A job whose curve never reaches the threshold is NOT_REACHED: the table counts it, never drops it.
"""
from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass

NOT_REACHED = "not reached"  # the value of epochs_to/steps_to for a job that never got there

_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
# the threshold is matched loosely (anything up to the closing parenthesis) and then checked as a number by
# _NUMBER, so `epochs_to(val_acc>=1..2)` is refused as a bad threshold instead of reaching float()
_REACH = re.compile(r"^(epochs_to|steps_to)\(\s*([\w/.\-]+)\s*(>=|<=|>|<)\s*([^()%]*?)\s*(%?)\s*\)$")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_OF_COLUMN = re.compile(r"^(auc|best|final)\(\s*([\w/.\-]+)\s*\)$")
SYNTAX = ("gap, epochs_to(<column>>=X), steps_to(<column>>=X) (also <=, >, <), auc(<column>), "
          "best(<column>), final(<column>)")

# The swept config group -> the derived column that shows its lesson, added to the default table.
NATURAL = {"regularizer": "gap", "augment": "gap", "optimizer": "auc(val_acc)", "activation": "auc(val_acc)",
           "preprocess": "auc(val_acc)", "init": "auc(val_acc)", "schedule": "auc(val_acc)"}


def is_percent_column(column: str) -> bool:
    return bool(set(re.split(r"[._\-:/]", column.lower())) & {"acc", "accuracy", "top1", "top5"})


@dataclass(frozen=True)
class Derived:
    func: str              # gap | epochs_to | steps_to | auc | best | final
    column: str            # the metrics.csv column it reads (val_acc for gap)
    op: str | None = None  # reach metrics: the comparison and its threshold
    threshold: float | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        return ("train_eval_acc", "val_acc") if self.func == "gap" else (self.column,)

    @property
    def kind(self) -> str | None:
        """Overrides the name-guessed kind: counts for reach metrics, the column's for the others."""
        if self.func in ("epochs_to", "steps_to"):
            return "count"
        return "percent" if self.func == "gap" else None

    @property
    def higher_is_better(self) -> bool | None:
        if self.func == "gap" or self.func in ("epochs_to", "steps_to"):
            return False  # a smaller gap, an earlier arrival
        return None

    @property
    def label(self) -> str:
        if self.func == "gap":
            return "gap train−val (pp)"
        if self.op is not None:
            shown = f"{100 * self.threshold:g}%" if is_percent_column(self.column) else f"{self.threshold:g}"
            return f"{self.func.replace('_to', '')} to {self.column}{self.op}{shown}"
        return f"{self.func}({self.column})" + (" (%)" if is_percent_column(self.column) else "")

    def value(self, metrics: dict[str, list[float | None]]):
        """The number for one job's metrics.csv columns; None when a column is missing."""
        if any(c not in metrics for c in self.columns):
            return None
        if self.func == "gap":
            train, val = _last(metrics["train_eval_acc"]), _last(metrics["val_acc"])
            return None if train is None or val is None else train - val
        values = metrics[self.column]
        finite = [v for v in values if v is not None and math.isfinite(v)]
        if self.func == "auc":
            return sum(finite) / len(finite) if finite else None
        if self.func == "best":
            return (max if is_percent_column(self.column) else min)(finite) if finite else None
        if self.func == "final":
            return _last(values)
        at = metrics.get("epoch" if self.func == "epochs_to" else "step", [])
        for value, when in zip(values, at):
            if value is not None and when is not None and _OPS[self.op](value, self.threshold):
                return when
        return NOT_REACHED


def parse(name: str) -> Derived | None:
    """The derived metric a name spells, or None when it is not one."""
    if name == "gap":
        return Derived("gap", "val_acc")
    match = _REACH.match(name)
    if match and _NUMBER.match(match.group(4)):
        func, column, op, number, percent = match.groups()
        threshold = float(number)
        if is_percent_column(column) and (percent or threshold > 1):
            threshold /= 100  # accuracies are fractions on disk; 90 and 90% mean 0.9
        return Derived(func, column, op, threshold)
    match = _OF_COLUMN.match(name)
    return Derived(match.group(1), match.group(2)) if match else None


def bad_threshold(name: str) -> str | None:
    """The threshold text of a reach metric that is not a number (`1..2`, `-`, `1e`), else None."""
    match = _REACH.match(name)
    return match.group(4) if match and not _NUMBER.match(match.group(4)) else None


def looks_derived(name: str) -> bool:
    """Meant as a derived metric (a function call), even if misspelled: gets the syntax in the error."""
    return name == "gap" or "(" in name


def natural_metrics(swept: list[str], columns: set[str]) -> list[str]:
    """Derived columns the swept keys call for, when the sweep's metrics.csv files can give them.
    Only for runs that log train_eval_acc, which also start at a step-0 row: older curves begin
    after the first epoch, and their mean would not compare learning speed from the same start."""
    out = []
    if "train_eval_acc" not in columns:
        return out
    for key in swept:
        name = NATURAL.get(key.split(".")[0])
        if name and name not in out and all(c in columns for c in parse(name).columns):
            out.append(name)
    return out


def _last(values: list[float | None]) -> float | None:
    return next((v for v in reversed(values) if v is not None), None)
