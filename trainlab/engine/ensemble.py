"""The computation of `trainlab ensemble`: average the predicted probabilities of several
trained models on the test set. All members must come from the same dataset and split,
so they are scored on the same test examples.

The command's flags and the search for member checkpoints are in ensemble_cli.py, which
imports this module (and torch) only once they are parsed and found.
"""
from pathlib import Path

import torch

from trainlab.data.preprocess import to_float
from trainlab.data.splits import load_splits
from trainlab.engine.restore import checkpoint_config, load_trained
from trainlab.errors import ConfigError

# what decides the test split; the validation split (val_split, a CV fold) may differ between members
DATA_KEYS = ("name", "root", "split_seed")


@torch.no_grad()
def member_probabilities(trained, x: torch.Tensor, batch: int = 1024) -> torch.Tensor:
    out = [trained.model(trained.preprocess(to_float(x[i:i + batch]))).float().softmax(dim=1)
           for i in range(0, len(x), batch)]
    return torch.cat(out)


def ensemble(checkpoints: list[Path], device: str = "cpu") -> dict:
    configs = [checkpoint_config(p) for p in checkpoints]
    data = [{k: c["dataset"].get(k) for k in DATA_KEYS} for c in configs]
    for path, d in zip(checkpoints, data):
        if d != data[0]:
            raise ConfigError("PATH", str(path), f"members trained on the same dataset and split ({data[0]})")
    from trainlab.config import validate
    from omegaconf import OmegaConf

    splits = load_splits(validate(OmegaConf.create(configs[0])).dataset)
    test = splits.test
    # indexing reads every test input, also from an image folder left on disk (dataset.preload=false)
    x, y = test.x[torch.arange(len(test.y))].to(device), test.y.to(device)
    members, total = [], None
    for path in checkpoints:
        trained = load_trained(path, splits.input_shape, splits.num_classes, device)
        probs = member_probabilities(trained, x)
        members.append({"checkpoint": str(path), "test_acc": (probs.argmax(1) == y).float().mean().item()})
        total = probs if total is None else total + probs
    ens = total / len(checkpoints)
    return {"members": members, "ensemble_test_acc": (ens.argmax(1) == y).float().mean().item(),
            "ensemble_test_loss": torch.nn.functional.nll_loss(ens.clamp_min(1e-12).log(), y).item(),
            "n": len(checkpoints), "test_examples": len(y)}
