"""Evaluation metrics beyond top-1 (trainer.metrics): top-5, per-class accuracy, confusion matrix.

They accumulate in device tensors batch by batch, next to the loss sum and the top-1
count, and come back in the evaluation's one host read. Written here (a few lines)
rather than with torchmetrics: its MulticlassConfusionMatrix counts with bincount, which
has no deterministic CUDA kernel (trainer.deterministic would refuse it), it would be a
new dependency for ~15 lines, and each of its metrics keeps its own state to read back
(one read each) where one tensor gives one read for all of them.
"""
from __future__ import annotations

from pathlib import Path

import torch


def resolve(names, num_classes: int) -> frozenset:
    """The metrics to compute: `auto` is top-5 when there are more than 10 classes."""
    chosen = set(names)
    if "auto" in chosen:
        chosen.discard("auto")
        if num_classes > 10:
            chosen.add("top5")
    return frozenset(chosen)


class EvalCounts:
    """Device accumulators of one evaluation: [loss sum, top-1 correct, top-k correct] and,
    for per_class or confusion, the C x C counts (row: true class, column: predicted)."""

    def __init__(self, chosen: frozenset, num_classes: int, device):
        self.top5, self.matrix = "top5" in chosen, bool(chosen & {"per_class", "confusion"})
        self.per_class, self.confusion = "per_class" in chosen, "confusion" in chosen
        self.classes, self.k = num_classes, min(5, num_classes)
        self.totals = torch.zeros(3, device=device, dtype=torch.float64)
        self.counts = torch.zeros(num_classes, num_classes, device=device, dtype=torch.float64) if self.matrix else None

    def add(self, scores: torch.Tensor, labels: torch.Tensor, mean_loss: torch.Tensor) -> None:
        predicted = scores.argmax(dim=1)
        self.totals[0] += mean_loss.double() * len(labels)
        self.totals[1] += (predicted == labels).sum()
        if self.top5:
            self.totals[2] += (scores.topk(self.k, dim=1).indices == labels[:, None]).any(dim=1).sum()
        if self.matrix:
            # one-hot(true)^T @ one-hot(predicted): a deterministic kernel on every device (bincount
            # and index_add_ are not on CUDA); 0/1 products summed in fp32 are exact per batch
            true = torch.nn.functional.one_hot(labels, self.classes).float()
            self.counts += (true.T @ torch.nn.functional.one_hot(predicted, self.classes).float()).double()

    def read(self, n: int) -> dict:
        """The one host read: every accumulator in one tensor."""
        flat = torch.cat([self.totals, self.counts.flatten()]) if self.matrix else self.totals
        values = flat.tolist()
        n = max(n, 1)
        out = {"loss": values[0] / n, "acc": values[1] / n}
        if self.top5:
            out["top5_acc"] = values[2] / n
        if self.matrix:
            c = self.classes
            rows = [values[3 + i * c: 3 + (i + 1) * c] for i in range(c)]
            if self.per_class:  # a class without examples in the split has no accuracy (nan)
                out["per_class"] = [row[i] / sum(row) if sum(row) else float("nan") for i, row in enumerate(rows)]
            if self.confusion:
                out["confusion"] = [[int(v) for v in row] for row in rows]
        return out


def row_entries(result: dict, prefix: str) -> dict:
    """The metrics.csv columns of an evaluation's extra metrics (the confusion matrix is a figure)."""
    out = {f"{prefix}_top5_acc": result["top5_acc"]} if "top5_acc" in result else {}
    for k, acc in enumerate(result.get("per_class", [])):
        out[f"{prefix}_acc_c{k}"] = acc
    return out


def plot_confusion(matrix: list[list[int]], path: Path, title: str) -> Path:
    """confusion.png: rows are true classes, columns predicted, each row as fractions of that class."""
    from matplotlib.figure import Figure

    c = len(matrix)
    fractions = [[v / max(sum(row), 1) for v in row] for row in matrix]
    side = min(4 + 0.35 * c, 14)
    fig = Figure(figsize=(side + 1.2, side))
    ax = fig.subplots()
    image = ax.imshow(fractions, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, label="fraction of the true class")
    if c <= 20:  # every class labelled and counts in the cells while they stay readable
        ax.set_xticks(range(c))
        ax.set_yticks(range(c))
        for i, row in enumerate(matrix):
            for j, v in enumerate(row):
                ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                        color="white" if fractions[i][j] > 0.5 else "black")
    ax.set(xlabel="predicted class", ylabel="true class", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path
