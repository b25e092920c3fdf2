"""The plain-PyTorch twin of `trainlab train dataset=mnist arch=cnn`: what `python -m benchmarks eval`
compares trainlab against, as a whole process.

    python benchmarks/plain_cnn.py --data ROOT [--epochs 3] [--subset N]

It does what that trainlab run does, written the short way a tutorial would, with no trainlab import:
  - data: torchvision's MNIST from ROOT/MNIST/raw (the same files `dataset.root` reads), as uint8
    tensors (N, 1, 28, 28); 10% of the training split held out for validation (54,000 / 6,000, the
    sizes of trainlab's dataset.val_split=0.1; a plain random split instead of a stratified one);
  - inputs: uint8 -> [0, 1] floats per batch, then standardized per channel with the mean and std of
    the training part (std = sqrt(var + 0.01^2), trainlab's preprocess=standardize);
  - model: conv3x3(32)-ReLU-maxpool-conv3x3(64)-ReLU-maxpool-global avgpool-linear(10), arch=cnn's
    layers (PyTorch's default init: the weights' values do not change the cost);
  - training: Adam, lr 1e-3 (optimizer=adam's defaults), batch 64, shuffled each epoch;
  - evaluation: the validation split after every epoch and the test split once at the end, in
    batches of 1024 (trainer.eval_batch_size).
The run's environment (OMP_WAIT_POLICY, threads) is the benchmark's: it sets neither.
"""
import argparse
import time

import torch
import torch.nn.functional as F
import torchvision
from torch import nn


def load(root: str, subset: int | None):
    train = torchvision.datasets.MNIST(root, train=True, download=False)
    test = torchvision.datasets.MNIST(root, train=False, download=False)
    x, y = train.data.unsqueeze(1).contiguous(), train.targets
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    n_val = round(0.1 * len(y))
    val, keep = order[:n_val], order[n_val:]
    if subset:
        keep = keep[:subset]
    return (x[keep], y[keep]), (x[val], y[val]), (test.data.unsqueeze(1).contiguous(), test.targets)


def cnn(channels=(32, 64), classes: int = 10) -> nn.Sequential:
    layers, c_in = [], 1
    for c_out in channels:
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        c_in = c_out
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, classes))


@torch.no_grad()
def evaluate(model, x, y, norm, batch_size: int) -> tuple[float, float]:
    model.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(y), batch_size):
        out = model(norm(x[i:i + batch_size]))
        loss += F.cross_entropy(out, y[i:i + batch_size], reduction="sum").item()
        correct += (out.argmax(1) == y[i:i + batch_size]).sum().item()
    model.train()
    return loss / len(y), correct / len(y)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="folder holding MNIST/raw (the trainlab run's dataset.root)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--subset", type=int, default=None, help="train on the first N training examples")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--eval-batch-size", type=int, default=1024)
    args = p.parse_args()
    start = time.perf_counter()
    (x, y), (vx, vy), (tx, ty) = load(args.data, args.subset)
    pixels = x.float().div_(255.0)
    mean, std = pixels.mean(), (pixels.var() + 0.01**2).sqrt()  # one channel: per-channel = over all pixels
    del pixels

    def norm(xb: torch.Tensor) -> torch.Tensor:
        return (xb.float().div_(255.0) - mean) / std

    model = cnn()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(args.epochs):
        order = torch.randperm(len(y))
        for i in range(0, len(y), args.batch_size):
            idx = order[i:i + args.batch_size]
            loss = F.cross_entropy(model(norm(x[idx])), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        val_loss, val_acc = evaluate(model, vx, vy, norm, args.eval_batch_size)
        print(f"epoch {epoch + 1}: val loss {val_loss:.4f} acc {100 * val_acc:.2f}%", flush=True)
    test_loss, test_acc = evaluate(model, tx, ty, norm, args.eval_batch_size)
    print(f"test loss {test_loss:.4f} acc {100 * test_acc:.2f}% ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
