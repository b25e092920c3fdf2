"""Assemble a run from its validated spec: data, preprocessing, model, optimizer, schedule."""
import random
from dataclasses import dataclass

import numpy as np
import torch

from trainlab.data.batches import steps_per_epoch
from trainlab.data.preprocess import fit_preprocessor
from trainlab.data.splits import Split, Splits, load_splits
from trainlab.engine import distributed
from trainlab.engine.ema import EMA
from trainlab.errors import ConfigError
from trainlab.nn import build_model
from trainlab.optim.losses import LOSSES
from trainlab.optim.optimizers import build_optimizer, gradient_clipper
from trainlab.optim.regularizers import build_constraints, build_penalties, dropout_probability
from trainlab.optim.schedules import build_schedule


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return distributed.device_for(distributed.current(),
                                      torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("trainer.device", name, "cpu or auto: no CUDA device is available here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("trainer.device", name, "cpu or auto: MPS is not available here")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


@dataclass
class Components:
    splits: Splits          # on the training device
    preprocess: torch.nn.Module
    model: torch.nn.Module
    augment: object | None
    loss_fn: torch.nn.Module
    penalties: list
    optimizer: torch.optim.Optimizer
    schedule: object        # trainlab.optim.schedules.Schedule: step() per step, on_eval() per evaluation
    clip: object            # gradient clipper or None
    constraints: list       # applied after every step (max-norm, decoupled decay)
    scaler: object
    ema: object             # trainlab.engine.ema.EMA or None
    train_model: torch.nn.Module  # what the training step calls: DDP-wrapped on several ranks
    dist: object            # trainlab.engine.distributed.DistInfo
    shuffle_gen: torch.Generator
    aug_gen: torch.Generator
    steps_per_epoch: int


def split_megabytes(splits: Splits) -> float:
    tensors = [s.x for s in (splits.train, splits.val, splits.test)] + [s.y for s in (splits.train, splits.val, splits.test)]
    return sum(t.numel() * t.element_size() for t in tensors) / 2**20


def data_device_for(trainer, splits: Splits, device: torch.device) -> torch.device:
    """Where the dataset tensors live: on the training device when they fit (indexing there is
    the fast path), else in host memory with batches copied over."""
    if trainer.data_placement == "device":
        return device
    if trainer.data_placement == "host" or split_megabytes(splits) > trainer.device_data_limit_mb:
        return torch.device("cpu")
    return device


def place_splits(splits: Splits, device: torch.device, data_device: torch.device) -> Splits:
    pin = data_device.type == "cpu" and device.type == "cuda"  # pinned memory makes the copies asynchronous

    def place(split):
        moved = split.to(data_device)
        return Split(moved.x.pin_memory(), moved.y.pin_memory()) if pin else moved

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
    splits = load_splits(spec.dataset)
    if preprocess_state is None:
        pre = fit_preprocessor(spec.preprocess, splits.train.x)  # train split only
    else:
        from trainlab.data.preprocess import restore_preprocessor

        pre = restore_preprocessor(spec.preprocess, splits.input_shape, preprocess_state)
    data_device = data_device_for(spec.trainer, splits, device)
    augment = build_augment(spec, splits.input_shape, splits.num_classes)
    if spec.trainer.tta != "none" and len(splits.input_shape) != 3:
        raise ConfigError("trainer.tta", spec.trainer.tta, f"none: test-time augmentation needs images, the dataset gives {splits.input_shape}")
    model = build_model(spec, pre.output_shape(), splits.num_classes, dropout_probability(spec.regularizer))
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
    per_epoch = steps_per_epoch(len(splits.train), global_batch)
    schedule = build_schedule(spec.schedule, spec.optimizer, optimizer, per_epoch, per_epoch * spec.trainer.epochs)
    scaler = torch.amp.GradScaler(device.type, enabled=spec.trainer.precision == "fp16")
    return Components(
        splits=place_splits(splits, device, data_device),
        preprocess=pre.to(device), model=model, augment=augment,
        loss_fn=LOSSES[spec.loss.name].build(spec.loss), penalties=build_penalties(spec.regularizer, model),
        optimizer=optimizer, schedule=schedule, clip=gradient_clipper(spec.optimizer),
        constraints=build_constraints(spec.regularizer), scaler=scaler,
        ema=EMA(model, spec.trainer.ema.decay, spec.trainer.ema.warmup) if spec.trainer.ema.decay > 0 else None,
        train_model=distributed.wrap(model, device), dist=info,
        shuffle_gen=torch.Generator(device=data_device).manual_seed(spec.seed + 1),
        aug_gen=torch.Generator(device=device).manual_seed(spec.seed + 2),
        steps_per_epoch=per_epoch,
    )
