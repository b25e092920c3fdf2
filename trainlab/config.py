"""Validation: a composed Hydra config becomes a typed RunSpec, or one ConfigError.

Each group's option selects a schema from that group's registry; merging the
YAML node into the schema catches unknown keys and wrong types, and the
schema's __post_init__ catches out-of-range values. This is the only place
config values are checked, and it runs before any data is loaded.
"""
from dataclasses import dataclass, field, fields
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from trainlab.errors import ConfigError, check
from trainlab.schemas import COMBINABLE, SINGLE, registries, single_schema


@dataclass
class EarlyStopSchema:
    patience: int = 0        # stop after this many evaluations without improvement (0 = off)
    min_delta: float = 0.0   # an improvement smaller than this does not count


@dataclass
class EMASchema:
    decay: float = 0.0     # weight of the old average per step (0 = off; 0.999 is typical)
    warmup: bool = True    # ramp the decay up as min(decay, (1+t)/(10+t)) so early averages forget the init


@dataclass
class LoaderSchema:
    """The DataLoader of trainer.data_placement=loader (data too large for the device, or images on disk)."""

    workers: int | None = None     # processes reading (and decoding) batches; 0 = in the training process;
                                   # null = this process's share of the CPU cores, at most 8
    prefetch_factor: int = 2       # batches each worker reads ahead (with workers > 0)
    persistent_workers: bool = True  # keep workers alive between epochs and evaluations (no restart cost)


@dataclass
class TrainerSchema:
    epochs: int = 20               # passes over the training split
    batch_size: int = 64           # examples per optimizer step (per process)
    eval_batch_size: int = 1024    # examples per forward pass when evaluating
    device: str = "auto"           # auto (cuda if available), cpu, cuda, cuda:N, mps
    precision: str = "fp32"        # fp32, bf16 or fp16 (autocast; fp16 adds a gradient scaler)
    eval_every: int = 1            # evaluate on the validation split every N epochs
    checkpoint_every: int = 1      # write checkpoints/last.pt every N epochs (and always at the end)
    monitor: str = "val_acc"       # metric that picks checkpoints/best.pt: val_acc (max) or val_loss (min)
    early_stop: EarlyStopSchema = field(default_factory=EarlyStopSchema)
    stop_after: int | None = None  # end this session after N epochs, resumable (time-sliced jobs); null = run to the end
    deterministic: bool = False    # deterministic kernels (slower on GPU); CPU runs are deterministic anyway
    compile: bool = False          # torch.compile the model (compiled code is reused by later jobs of a multirun)
    compile_backend: str = "inductor"  # inductor (fast kernels), or eager / aot_eager to debug compilation
    channels_last: bool = False    # NHWC memory layout for convnets (faster with tensor cores)
    diagnostics: str = "light"     # live per-layer statistics: off, light (update/weight ratio, grad norm), full (+ activations)
    diagnostics_every: int = 20    # sample diagnostics every N steps
    data_placement: str = "auto"   # device: whole splits on the training device; host: pinned host memory,
                                   # batches gathered there and copied over; loader: a DataLoader with workers;
                                   # auto: device when the splits fit under device_data_limit_mb, else loader
    device_data_limit_mb: int = 4096  # the size (MB) of all splits' tensors auto puts on the device
    loader: LoaderSchema = field(default_factory=LoaderSchema)
    progress: str = "auto"         # auto (rich bar on a terminal, plain lines otherwise), rich, plain, off
    save_checkpoints: bool = True  # write last.pt/best.pt (turn off for throwaway sweeps)
    snapshots: bool = False        # also keep checkpoints/snapshot_eNNN.pt at every checkpoint (for snapshot ensembles)
    ema: EMASchema = field(default_factory=EMASchema)
    tta: str = "none"              # test-time augmentation reported beside the plain test metric: none, flip, crop
    nonfinite: str = "stop"        # a NaN/inf loss: "stop" the run as diverged (no per-step sync), or "skip" the step

    def __post_init__(self):
        check(self.epochs >= 1, "epochs", self.epochs, "an integer >= 1")
        check(self.batch_size >= 1, "batch_size", self.batch_size, "an integer >= 1")
        check(self.eval_batch_size >= 1, "eval_batch_size", self.eval_batch_size, "an integer >= 1")
        check(self.device == "auto" or self.device in ("cpu", "cuda", "mps") or self.device.startswith("cuda:"),
              "device", self.device, "one of auto, cpu, cuda, cuda:N, mps")
        check(self.precision in ("fp32", "bf16", "fp16"), "precision", self.precision, "one of fp32, bf16, fp16")
        check(self.eval_every >= 1, "eval_every", self.eval_every, "an integer >= 1")
        check(self.checkpoint_every >= 1, "checkpoint_every", self.checkpoint_every, "an integer >= 1")
        check(self.monitor in ("val_acc", "val_loss"), "monitor", self.monitor, "one of val_acc, val_loss")
        check(0 <= self.ema.decay < 1, "ema.decay", self.ema.decay, "a decay in [0, 1) (0 = off)")
        check(self.tta in ("none", "flip", "crop"), "tta", self.tta, "one of none, flip, crop")
        check(self.nonfinite in ("stop", "skip"), "nonfinite", self.nonfinite, "one of stop, skip")
        check(self.diagnostics in ("off", "light", "full"), "diagnostics", self.diagnostics, "one of off, light, full")
        check(self.diagnostics_every >= 1, "diagnostics_every", self.diagnostics_every, "an integer >= 1")
        check(not (self.diagnostics == "full" and self.compile), "diagnostics", self.diagnostics,
              "light or off with trainer.compile=true (full adds hooks that would force recompiles)")
        check(self.data_placement in ("auto", "device", "host", "loader"), "data_placement", self.data_placement,
              "one of auto, device, host, loader")
        check(self.loader.workers is None or self.loader.workers >= 0, "loader.workers", self.loader.workers,
              "an integer >= 0 (0 = no worker processes) or null")
        check(self.loader.prefetch_factor >= 1, "loader.prefetch_factor", self.loader.prefetch_factor,
              "an integer >= 1 (batches read ahead per worker)")
        check(self.device_data_limit_mb >= 0, "device_data_limit_mb", self.device_data_limit_mb, "a size in MB >= 0")
        check(self.compile_backend in ("inductor", "eager", "aot_eager", "cudagraphs"), "compile_backend",
              self.compile_backend, "one of inductor, eager, aot_eager, cudagraphs")
        check(self.early_stop.patience >= 0, "early_stop.patience", self.early_stop.patience, "an integer >= 0")
        check(self.early_stop.min_delta >= 0, "early_stop.min_delta", self.early_stop.min_delta, "a non-negative number")
        check(self.stop_after is None or self.stop_after >= 1, "stop_after", self.stop_after, "a positive epoch count or null")
        check(self.progress in ("auto", "rich", "plain", "off"), "progress", self.progress, "one of auto, rich, plain, off")


@dataclass
class RunSpec:
    """The validated configuration of one run: one schema instance per group."""

    seed: int
    name: str
    resume: bool
    dataset: Any
    preprocess: Any
    arch: Any
    activation: Any
    init: Any
    norm: Any
    loss: Any
    optimizer: Any
    schedule: Any
    trainer: TrainerSchema
    transfer: Any = None
    regularizer: dict = field(default_factory=dict)
    augment: dict = field(default_factory=dict)


def to_schema(schema: type, node, prefix: str):
    """Merge a config node into a schema dataclass; any problem becomes a one-line ConfigError."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), node)
        obj = OmegaConf.to_object(merged)
    except ConfigError as err:
        raise err.within(prefix) from None
    except ConfigKeyError as err:
        valid = ", ".join(f.name for f in fields(schema))
        raise ConfigError(f"{prefix}.{err.full_key}", _value_at(node, err.full_key), f"unknown key; valid keys: {valid}") from None
    except OmegaConfBaseException as err:
        first = str(err.msg if hasattr(err, "msg") else err).splitlines()[0]
        raise ConfigError(f"{prefix}.{err.full_key}", _value_at(node, err.full_key), first) from None
    return obj


def _value_at(node, key):
    try:
        return OmegaConf.select(OmegaConf.create(node) if not OmegaConf.is_config(node) else node, str(key))
    except Exception:
        return None


def validate(cfg: DictConfig) -> RunSpec:
    """The one validation of a composed config: what the sweep precheck runs on every job before
    anything starts, and what the job runs again on its own config. No torch import."""
    regs = registries()
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))  # a plain copy without the hydra node
    known = set(regs) | set(SINGLE) | {"seed", "name", "resume", "hydra"}
    for key in cfg:
        if key not in known:
            raise ConfigError(str(key), cfg[key], "unknown top-level key; valid: " + ", ".join(sorted(known - {"hydra"})))
    parts: dict[str, Any] = {}
    for group, registry in regs.items():
        node = cfg.get(group)
        if group in COMBINABLE:
            node = node or {}
            parts[group] = {str(name): to_schema(registry[str(name)].schema, sub or {}, f"{group}.{name}")
                            for name, sub in node.items()}
        else:
            if node is None or "name" not in node:
                raise ConfigError(group, node, f"a {group} option: {', '.join(registry.names())}")
            parts[group] = to_schema(registry[node.name].schema, node, group)
    for group in SINGLE:
        parts[group] = to_schema(single_schema(group), cfg.get(group) or {}, group)
    seed, name = cfg.get("seed", 0), cfg.get("name", "")
    check(isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2**32, "seed", seed,
          "an integer in [0, 2^32) (numpy's seed range)")
    spec = RunSpec(seed=seed, name=str(name or ""), resume=bool(cfg.get("resume", False)), **parts)
    check_combination(spec)
    return spec


# Option values whose output is a flat vector, whatever the dataset's images were.
FLAT_INPUTS = {("dataset", "spirals"), ("preprocess", "pca")}
IMAGE_ARCHS = ("cnn", "resnet", "torchvision")


def gives_images(spec: RunSpec) -> bool | None:
    """Whether the model sees (C, H, W) images: False when known flat, None when only the data can tell."""
    if ("dataset", spec.dataset.name) in FLAT_INPUTS or ("preprocess", spec.preprocess.name) in FLAT_INPUTS:
        return False
    if spec.preprocess.name == "whiten" and getattr(spec.preprocess, "method", "") == "pca":
        return False
    shape = getattr(spec.dataset, "shape", None)
    if shape is not None:
        return len(shape) == 3
    return None


def check_combination(spec: RunSpec) -> None:
    """Choices that are valid alone but not together, found from the config alone (before any data
    or model is built), so a sweep refuses such a job before its first job starts."""
    arch, norm = spec.arch.name, spec.norm.name
    if arch == "torchvision" and norm != "none":
        raise ConfigError("norm", norm, "none with arch=torchvision (it keeps the model's own normalization)")
    if arch == "torchvision" and "dropout" in spec.regularizer:
        raise ConfigError("regularizer", "dropout", "arch=torchvision keeps the model's own dropout; drop the dropout regularizer")
    if arch == "torchvision" and spec.activation.name == "maxout":
        raise ConfigError("activation", "maxout", "an activation that keeps the layer width: maxout cannot be swapped into a torchvision model")
    images = gives_images(spec)
    if norm == "instancenorm" and (arch in ("linear", "mlp") or images is False):
        raise ConfigError("norm", norm, f"instance norm needs conv feature maps (arch={arch} has none); use layernorm")
    if images is False and arch in IMAGE_ARCHS:
        raise ConfigError("arch", arch, f"linear or mlp: arch={arch} needs (C, H, W) images and "
                          f"dataset={spec.dataset.name} preprocess={spec.preprocess.name} gives flat vectors")
    if images is False and spec.trainer.tta != "none":
        raise ConfigError("trainer.tta", spec.trainer.tta, "none: test-time augmentation needs images")
