"""`trainlab ensemble`: average the predicted probabilities of several trained models on the test set.

Members are the best checkpoints of run folders (or every job of a sweep
folder), optionally plus each run's snapshot checkpoints (`--snapshots`,
saved with trainer.snapshots=true). All members must come from the same
dataset and split, so they are scored on the same test examples.
"""
import argparse
import json
from pathlib import Path

import torch

from trainlab.data.preprocess import to_float
from trainlab.data.splits import load_splits
from trainlab.engine.restore import checkpoint_config, load_trained
from trainlab.errors import ConfigError

DATA_KEYS = ("name", "root", "split_seed", "val_split", "cv")


def member_checkpoints(paths: list[str], snapshots: bool) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            found.append(path)
            continue
        if not path.is_dir():
            raise ConfigError("PATH", raw, "a run folder, a sweep folder or a checkpoint file")
        run_dirs = [path] if (path / "checkpoints").is_dir() else sorted(p for p in path.iterdir() if (p / "checkpoints").is_dir())
        if not run_dirs:
            raise ConfigError("PATH", raw, "a run or sweep folder holding checkpoints/best.pt")
        for run in run_dirs:
            if (run / "checkpoints" / "best.pt").is_file():
                found.append(run / "checkpoints" / "best.pt")
            if snapshots:
                found += sorted((run / "checkpoints").glob("snapshot_e*.pt"))
    if not found:
        raise ConfigError("PATH", " ".join(paths), "folders with checkpoints/best.pt (were checkpoints saved?)")
    return found


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


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line through the CLI, not argparse's usage dump
        raise ConfigError("ensemble", " ".join(self._argv), message)


def ensemble_main(argv: list[str]) -> int:
    parser = _Parser(prog="trainlab ensemble", description=__doc__)
    parser._argv = list(argv)
    parser.add_argument("paths", nargs="+", help="run folders, sweep folders or checkpoint files")
    parser.add_argument("--snapshots", action="store_true", help="also use each run's snapshot_eNNN.pt checkpoints")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", help="write the result as JSON here")
    args = parser.parse_args(argv)
    result = ensemble(member_checkpoints(args.paths, args.snapshots), args.device)
    width = max(len(m["checkpoint"]) for m in result["members"])
    for m in result["members"]:
        print(f"{m['checkpoint']:<{width}}  test acc {100 * m['test_acc']:6.2f}%")
    mean = sum(m["test_acc"] for m in result["members"]) / result["n"]
    print(f"{'ensemble of ' + str(result['n']):<{width}}  test acc {100 * result['ensemble_test_acc']:6.2f}%"
          f"   (members' mean {100 * mean:.2f}%)")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0
