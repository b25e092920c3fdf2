"""curves.png: loss and accuracy (train vs val) and the learning rate, per evaluation."""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: runs on clusters and CI
import matplotlib.pyplot as plt  # noqa: E402


def plot_curves(rows: list[dict], path: Path, title: str = "") -> None:
    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_acc, ax_lr) = plt.subplots(1, 3, figsize=(13, 3.6))
    ax_loss.plot(epochs, [r["train_loss"] for r in rows], label="train (data loss)")
    ax_loss.plot(epochs, [r["val_loss"] for r in rows], label="val")
    if any(r.get("train_penalty", 0) for r in rows):
        ax_loss.plot(epochs, [r["train_loss"] + r["train_penalty"] for r in rows], "--", label="train (with penalty)")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.plot(epochs, [100 * r["train_acc"] for r in rows], label="train")
    ax_acc.plot(epochs, [100 * r["val_acc"] for r in rows], label="val")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    ax_lr.plot(epochs, [r["lr"] for r in rows], color="tab:green")
    ax_lr.set(xlabel="epoch", ylabel="learning rate", title="learning rate")
    if rows and min(r["lr"] for r in rows) > 0 and max(r["lr"] for r in rows) / min(r["lr"] for r in rows) > 20:
        ax_lr.set_yscale("log")
    for ax in (ax_loss, ax_acc):
        ax.legend()
        ax.grid(alpha=0.3)
    ax_lr.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
