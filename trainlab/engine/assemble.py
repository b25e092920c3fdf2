"""Assemble a run from its validated spec: data, preprocessing, model, optimizer, schedule."""
import logging
import random
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch

from trainlab.data.augment.pipeline import BatchAugment
from trainlab.data.batches import steps_per_epoch
from trainlab.data.image_files import is_lazy
from trainlab.data.loader import read_inputs
from trainlab.data.preprocess import fit_preprocessor
from trainlab.data.splits import Split, Splits, load_splits, take
from trainlab.devices import check_device
from trainlab.engine import distributed
from trainlab.engine.ema import EMA
from trainlab.engine.distributed import DistInfo
from trainlab.engine.polyak import Polyak
from trainlab.errors import ConfigError
from trainlab.nn import build_model
from trainlab.optim.losses import LOSSES
from trainlab.optim.optimizers import GradientClipper, build_optimizer, gradient_clipper
from trainlab.optim.regularizers import build_constraints, build_penalties
from trainlab.optim.schedules import Schedule, build_schedule

log = logging.getLogger("trainlab")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return distributed.device_for(distributed.current(),
                                      torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    check_device("trainer.device", name)
    return torch.device(name)


def limit_splits(splits: Splits, trainer) -> Splits:
    """trainer.limit_batches.val/test: the first batches' examples of those splits (the training split
    stays whole: its steps per epoch are capped instead, from the same permutation)."""
    limits = trainer.limit_batches
    for name in ("val", "test"):
        limit = getattr(limits, name)
        split = getattr(splits, name)
        if limit is not None and limit * trainer.eval_batch_size < len(split):
            idx = np.arange(limit * trainer.eval_batch_size)
            setattr(splits, name, Split(take(split.x, idx), split.y[torch.from_numpy(idx)]))
    return splits


def limited_steps(steps: int, trainer) -> int:
    """Steps per epoch under trainer.limit_batches.train."""
    limit = trainer.limit_batches.train
    return steps if limit is None else min(steps, limit)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


@dataclass
class Components:
    splits: Splits          # on the training device, in (pinned) host memory, or on disk: see placement
    preprocess: torch.nn.Module
    model: torch.nn.Module
    augment: BatchAugment | None
    loss_fn: torch.nn.Module
    penalties: list
    optimizer: torch.optim.Optimizer
    schedule: Schedule      # step() per step, on_eval() per evaluation
    clip: GradientClipper | None
    constraints: list       # applied after every step (max-norm, decoupled decay)
    scaler: torch.amp.GradScaler
    ema: EMA | None
    train_model: torch.nn.Module  # what the training step calls: DDP-wrapped on several ranks
    dist: DistInfo
    shuffle_gen: torch.Generator
    aug_gen: torch.Generator
    steps_per_epoch: int
    placement: str = "device"  # where batches come from: device, host or loader (see choose_placement)
    polyak: Polyak | None = None  # trainer.polyak.epochs > 0

    def training_examples(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training examples `idx` (raw inputs, labels) on the training device, wherever the split
        lives: for the tools (check, lr-find, inspect) that pick examples outside the Loop."""
        split, device = self.splits.train, next(self.model.parameters()).device
        idx = idx.to(split.y.device)
        return split.x[idx].to(device), split.y[idx].to(device)


def split_megabytes(splits: Splits) -> float:
    tensors = [s.x for s in (splits.train, splits.val, splits.test)] + [s.y for s in (splits.train, splits.val, splits.test)]
    return sum(t.numel() * t.element_size() for t in tensors) / 2**20


def choose_placement(trainer, splits: Splits) -> str:
    """Where batches come from: `device` (whole splits on the training device, indexing there is
    the fast path), `loader` (a DataLoader with workers) or `host` (pinned host memory, gathered
    in this process). auto: device when the splits fit under device_data_limit_mb, else loader.
    Images still on disk can only be read per batch, by the loader."""
    if is_lazy(splits.train.x):
        if trainer.data_placement in ("device", "host"):
            raise ConfigError("trainer.data_placement", trainer.data_placement,
                              "loader or auto: the image folder is read from disk per batch (dataset.preload); "
                              "set dataset.preload=true to decode it into memory first")
        return "loader"
    if trainer.data_placement != "auto":
        return trainer.data_placement
    return "device" if split_megabytes(splits) <= trainer.device_data_limit_mb else "loader"


def place_splits(splits: Splits, device: torch.device, placement: str) -> Splits:
    """Move the splits where `placement` reads them: the device, or pinned host memory for `host`
    (asynchronous copies). The loader pins each batch itself and leaves the splits as they are."""
    if placement == "loader":
        return splits
    if placement == "device":
        return Splits(splits.train.to(device), splits.val.to(device), splits.test.to(device), splits.classes)
    pin = device.type == "cuda"

    def place(split):
        return Split(split.x.pin_memory(), split.y.pin_memory()) if pin else split

    return Splits(place(splits.train), place(splits.val), place(splits.test), splits.classes)


def build_augment(spec, input_shape: tuple, num_classes: int):
    if not spec.augment:
        return None
    from trainlab.data.augment import BatchAugment

    augment = BatchAugment(spec.augment, num_classes)
    augment.check_input_shape(tuple(input_shape))
    return augment


def assemble(spec, device: torch.device, preprocess_state: dict | None = None) -> Components:
    """Everything a run needs, in a fixed order so the seeded RNG draws are reproducible."""
    seed_everything(spec.seed)
    if spec.trainer.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = not spec.trainer.deterministic
    splits = limit_splits(load_splits(spec.dataset), spec.trainer)
    placement = choose_placement(spec.trainer, splits)
    if preprocess_state is None:
        # train split only, streamed; images on disk are decoded by loader workers
        read = partial(read_inputs, splits.train, cfg=spec.trainer.loader) if is_lazy(splits.train.x) else None
        pre = fit_preprocessor(spec.preprocess, splits.train.x, read)
    else:
        from trainlab.data.preprocess import restore_preprocessor

        pre = restore_preprocessor(spec.preprocess, splits.input_shape, preprocess_state)
    augment = build_augment(spec, splits.input_shape, splits.num_classes)
    if spec.trainer.tta != "none" and len(splits.input_shape) != 3:
        raise ConfigError("trainer.tta", spec.trainer.tta, f"none: test-time augmentation needs images, the dataset gives {splits.input_shape}")
    model = build_model(spec, pre.output_shape(), splits.num_classes)
    if spec.transfer is not None:
        from trainlab.engine.transfer import apply_transfer

        apply_transfer(model, spec.transfer)
    model.to(device)
    if spec.trainer.channels_last and len(pre.output_shape()) == 3:
        model.to(memory_format=torch.channels_last)
    if spec.trainer.compile:
        # in place, so state_dict keys stay unprefixed and checkpoints load into uncompiled models
        model.compile(backend=spec.trainer.compile_backend)
    optimizer = build_optimizer(spec.optimizer, model, spec.trainer.batch_size)
    info = distributed.current()
    global_batch = spec.trainer.batch_size * info.world
    if info.world > 1 and len(splits.train) < global_batch:
        raise ConfigError("trainer.batch_size", spec.trainer.batch_size,
                          f"at most {len(splits.train) // info.world} per process: {info.world} processes share "
                          f"{len(splits.train)} training examples")
    if len(splits.train) < global_batch and info.is_main:
        log.warning(f"trainer.batch_size={spec.trainer.batch_size} is larger than the training split "
                    f"({len(splits.train)} examples): every step takes the whole split (full-batch training)")
    per_epoch = limited_steps(steps_per_epoch(len(splits.train), global_batch), spec.trainer)
    schedule = build_schedule(spec.schedule, spec.optimizer, optimizer, per_epoch, per_epoch * spec.trainer.epochs)
    scaler = torch.amp.GradScaler(device.type, enabled=spec.trainer.precision == "fp16")
    return Components(
        splits=place_splits(splits, device, placement), placement=placement,
        preprocess=pre.to(device), model=model, augment=augment,
        loss_fn=LOSSES[spec.loss.name].build(spec.loss), penalties=build_penalties(spec.regularizer, model),
        optimizer=optimizer, schedule=schedule, clip=gradient_clipper(spec.optimizer),
        constraints=build_constraints(spec.regularizer), scaler=scaler,
        ema=EMA(model, spec.trainer.ema.decay, spec.trainer.ema.warmup) if spec.trainer.ema.decay > 0 else None,
        polyak=Polyak(model, spec.trainer.polyak.epochs, spec.trainer.epochs) if spec.trainer.polyak.epochs else None,
        train_model=distributed.wrap(model, device), dist=info,
        # drawn where the device path draws it, so `loader` reproduces its order (host keeps its own)
        shuffle_gen=torch.Generator(device="cpu" if placement == "host" else device).manual_seed(spec.seed + 1),
        aug_gen=torch.Generator(device=device).manual_seed(spec.seed + 2),
        steps_per_epoch=per_epoch,
    )
