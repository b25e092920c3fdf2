"""The comparators that `python -m benchmarks throughput` runs side by side (C4 and C4d: benchmarks/lightning.py).

Every comparator trains its own copy of the same initial model on the same
uint8 training tensor with the same optimizer settings (SGD with momentum, the
learning rate and momentum of trainlab's `optimizer=momentum`). Each exposes

    run_epoch()   one pass over the training tensor: `steps` optimizer steps
    close()       release threads/workers

and the harness times run_epoch() with a device sync on both sides, so work
queued on a GPU is inside the measurement. None of them reads a value back to
the host per step except C3, which does it on purpose (that is what it models).

    C0 Floor            one fixed device batch: forward/backward/step only
    C1 HandLoop         plain PyTorch written for speed: data on the device as
                        uint8, randperm per epoch, gather per batch, flip and crop
                        as one batched gather on uint8, metrics summed on device
    C2 TrainlabEngine   trainlab.engine.loop.Loop.train_epoch on assembled components
    C3 TutorialLoader   DataLoader over a Dataset with torchvision v2 per-sample
                        transforms and `.item()` every step
    C4 LightningRunner  Lightning with lean settings and the data path its users
                        write: C3's DataLoader and per-sample transforms
    C4d LightningRunner the same Lightning set-up fed C1's device-resident
                        batches (augmented in training_step): Lightning's own
                        per-step cost with nothing else different from C1
"""
import copy
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Setup:
    """What every comparator shares."""

    model: nn.Module            # initial weights on the device; comparators train deep copies
    x: torch.Tensor             # (N, C, H, W) uint8 training images on the device
    y: torch.Tensor             # (N,) int64 labels on the device
    batch_size: int
    steps: int                  # optimizer steps per epoch (N // batch_size)
    augment: bool               # random horizontal flip (p=0.5) + random crop with zero padding
    pad: int                    # crop padding in pixels
    lr: float
    momentum: float
    device: torch.device
    amp_dtype: torch.dtype | None = None  # autocast dtype (bf16 on GPU) or None for fp32
    channels_last: bool = False
    seed: int = 0


def autocast(s: Setup):
    return torch.autocast(s.device.type, dtype=s.amp_dtype) if s.amp_dtype is not None else nullcontext()


def fresh_model(s: Setup) -> nn.Module:
    model = copy.deepcopy(s.model).to(s.device)
    if s.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model.train()


def sgd(model: nn.Module, s: Setup) -> torch.optim.Optimizer:
    # one parameter group: the plain way (trainlab splits weights and biases into two groups)
    return torch.optim.SGD(model.parameters(), lr=s.lr, momentum=s.momentum)


def to_unit_float(x: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
    """uint8 in [0, 255] -> float32 in [0, 1] (what trainlab's to_float does)."""
    x = x.float().div_(255.0)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def flip_crop_u8(x: torch.Tensor, pad: int, g: torch.Generator) -> torch.Tensor:
    """Per-sample random horizontal flip (p=0.5) and random pad-and-crop, as ONE gather on uint8.

    Output pixel (i, j) of sample n reads padded pixel (top[n] + i, left[n] + col(j)),
    col(j) = W-1-j for flipped samples and j otherwise, so flip and crop share a
    single index tensor of shape (N, 1, H*W) broadcast over channels. Working on
    uint8 moves a quarter of the bytes of float32.
    """
    n, c, h, w = x.shape
    dev = x.device
    padded = F.pad(x, (pad, pad, pad, pad))  # zeros
    wp = w + 2 * pad
    top = torch.randint(0, 2 * pad + 1, (n, 1, 1), device=dev, generator=g)
    left = torch.randint(0, 2 * pad + 1, (n, 1, 1), device=dev, generator=g)
    flip = torch.rand((n, 1, 1), device=dev, generator=g) < 0.5
    j = torch.arange(w, device=dev)
    cols = left + torch.where(flip, (w - 1) - j, j)             # (n, 1, w)
    rows = top + torch.arange(h, device=dev).view(1, h, 1)      # (n, h, 1)
    index = (rows * wp + cols).view(n, 1, h * w).expand(n, c, h * w)
    return padded.view(n, c, -1).gather(2, index).view(n, c, h, w)


# ---------------------------------------------------------------------- C0

class Floor:
    name, label = "C0", "floor: one fixed device batch, forward/backward/step only"

    def __init__(self, s: Setup):
        self.s, self.model = s, fresh_model(s)
        self.opt = sgd(self.model, s)
        self.xb = to_unit_float(s.x[: s.batch_size], s.channels_last)
        self.yb = s.y[: s.batch_size]

    def run_epoch(self):
        s, model, opt = self.s, self.model, self.opt
        for _ in range(s.steps):
            with autocast(s):
                out = model(self.xb)
            loss = F.cross_entropy(out.float(), self.yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    def close(self):
        pass


# ---------------------------------------------------------------------- C1

def device_batches(s: Setup, g: torch.Generator):
    """One epoch of (uint8 images, labels) batches gathered on the device by a fresh permutation."""
    order = torch.randperm(len(s.y), device=s.device, generator=g)
    bs = s.batch_size
    for i in range(s.steps):
        idx = order[i * bs:(i + 1) * bs]
        yield s.x[idx], s.y[idx]


class HandLoop:
    name, label = "C1", "hand-written device-resident loop (uint8 on device, randperm, batched flip/crop)"

    def __init__(self, s: Setup):
        self.s, self.model = s, fresh_model(s)
        self.opt = sgd(self.model, s)
        self.g = torch.Generator(device=s.device).manual_seed(s.seed + 11)
        self.sums = torch.zeros(2, device=s.device)  # loss sum, correct count: read once per epoch at most

    def run_epoch(self):
        s, model, opt, g = self.s, self.model, self.opt, self.g
        sums = self.sums.zero_()
        for xb, yb in device_batches(s, g):
            if s.augment:
                xb = flip_crop_u8(xb, s.pad, g)
            xb = to_unit_float(xb, s.channels_last)
            with autocast(s):
                out = model(xb)
            loss = F.cross_entropy(out.float(), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                sums[0] += loss.detach()
                sums[1] += (out.argmax(dim=1) == yb).sum()

    def close(self):
        pass


# ---------------------------------------------------------------------- C2

class TrainlabEngine:
    name, label = "C2", "trainlab engine: Loop.train_epoch on assembled components"

    def __init__(self, components, trainer_spec, device):
        from trainlab.engine.loop import EpochSums, Loop

        self._sums = EpochSums
        self.device = device
        self.loop = Loop(components, trainer_spec, device)
        level = getattr(trainer_spec, "diagnostics", "off")
        if level != "off":  # what Run.execute attaches to the loop (trainer.diagnostics, default light)
            from trainlab.diagnose.live import LiveDiagnostics

            self.loop.diag = LiveDiagnostics(components.model, level, trainer_spec.diagnostics_every)
            self.label = f"{self.label} (trainer.diagnostics={level}, as `trainlab train` runs it)"
        self.steps = 0

    def run_epoch(self):
        acc = self._sums.zeros(self.device)  # what Run._train hands in after every evaluation
        if self.loop.diag is not None:
            self.steps += self.loop.train_epoch(acc, first_step=self.steps)
            self.loop.diag.collect()  # Run reads these once per evaluation (every epoch by default)
        else:
            self.steps += self.loop.train_epoch(acc)
        self.last = acc

    def close(self):
        pass


# ---------------------------------------------------------------------- C3

class PerSampleDataset(torch.utils.data.Dataset):
    """The tutorial pattern: index one sample, transform it, let the DataLoader collate."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, transform):
        self.x, self.y, self.transform = x, y, transform

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.transform(self.x[i]), self.y[i]


def tutorial_transform(s: Setup):
    from torchvision.transforms import v2

    steps = [v2.RandomHorizontalFlip(p=0.5), v2.RandomCrop(tuple(s.x.shape[-2:]), padding=s.pad)] if s.augment else []
    return v2.Compose([*steps, v2.ToDtype(torch.float32, scale=True)])


def tutorial_loader(s: Setup, workers: int, seed: int) -> torch.utils.data.DataLoader:
    cuda = s.device.type == "cuda"
    dataset = PerSampleDataset(s.x.cpu(), s.y.cpu(), tutorial_transform(s))
    return torch.utils.data.DataLoader(
        dataset, batch_size=s.batch_size, shuffle=True, drop_last=True, num_workers=workers,
        pin_memory=cuda, persistent_workers=workers > 0, generator=torch.Generator().manual_seed(seed))


class TutorialLoader:
    name, label = "C3", "DataLoader + torchvision v2 per-sample transforms + .item() per step"

    def __init__(self, s: Setup, workers: int):
        self.s, self.model = s, fresh_model(s)
        self.opt = sgd(self.model, s)
        self.loader = tutorial_loader(s, workers, s.seed + 13)
        self.label = f"{self.label}, num_workers={workers}"

    def run_epoch(self):
        s, model, opt = self.s, self.model, self.opt
        running_loss, correct = 0.0, 0
        for xb, yb in self.loader:
            xb = xb.to(s.device, non_blocking=True)
            if s.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            yb = yb.to(s.device, non_blocking=True)
            with autocast(s):
                out = model(xb)
            loss = F.cross_entropy(out.float(), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            running_loss += loss.item()                       # host sync every step
            correct += (out.argmax(dim=1) == yb).sum().item()  # and again
        self.last = (running_loss, correct)

    def close(self):
        self.loader = None  # persistent workers exit with their iterator
