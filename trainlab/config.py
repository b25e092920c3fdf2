"""Validation: a composed Hydra config becomes a typed RunSpec, or one ConfigError.

Each group's option selects a schema from that group's registry; merging the
YAML node into the schema catches unknown keys and wrong types, and the
schema's __post_init__ catches out-of-range values. This is the only place
config values are checked, and it runs before any data is loaded.
"""
import math
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Protocol

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from trainlab.errors import ConfigError, check
from trainlab.provenance import check_tags
from trainlab.schemas import COMBINABLE, SINGLE, registries, single_schema
from trainlab.schemas.trainer import TrainerSchema
from trainlab.schemas.transfer import TransferSchema


class OptionSchema(Protocol):
    """What every group's option schema is: a dataclass of its hyperparameters, named by its option."""

    name: str


@dataclass
class RunSpec:
    """The validated configuration of one run: one schema instance per group."""

    seed: int
    name: str
    resume: bool
    dataset: OptionSchema
    preprocess: OptionSchema
    arch: OptionSchema
    activation: OptionSchema
    init: OptionSchema
    norm: OptionSchema
    loss: OptionSchema
    optimizer: OptionSchema
    schedule: OptionSchema
    trainer: TrainerSchema
    transfer: TransferSchema | None = None
    regularizer: dict = field(default_factory=dict)
    augment: dict = field(default_factory=dict)
    logger: dict = field(default_factory=dict)
    callbacks: list[str] = field(default_factory=list)  # "module:attribute" user hooks (trainlab.app.callbacks)
    tags: list[str] = field(default_factory=list)  # the user's labels (trainlab.provenance)


def to_schema(schema: type, node, prefix: str):
    """Merge a config node into a schema dataclass; any problem becomes a one-line ConfigError."""
    _check_kinds(schema, node, prefix)
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
    _check_finite(obj, prefix)
    return obj


def _check_kinds(schema: type, node, prefix: str) -> None:
    """What OmegaConf would report badly or accept: a number for a group of keys (`trainer.ema=0.99`,
    reported as the whole parent node) and any integer for a bool (`trainer.compile=2` reads as true)."""
    if not OmegaConf.is_dict(node) and not isinstance(node, dict):
        return
    for f in fields(schema):
        if f.name not in node:
            continue
        try:
            value = node[f.name]
        except OmegaConfBaseException:
            continue
        group = f.default_factory if is_dataclass(f.default_factory) else None
        if group is not None and not (OmegaConf.is_dict(value) or isinstance(value, dict)):
            keys = ", ".join(sub.name for sub in fields(group))
            raise ConfigError(f"{prefix}.{f.name}", value, f"a group of keys, each set on its own, e.g. "
                              f"{prefix}.{f.name}.{fields(group)[0].name}=... (keys: {keys})")
        if f.type in (bool, "bool") and isinstance(value, (int, float)) and not isinstance(value, bool) and value not in (0, 1):
            raise ConfigError(f"{prefix}.{f.name}", value, "true or false")


def _check_finite(obj, prefix: str) -> None:
    """No key of any schema means anything by inf or nan (`optimizer.lr=inf` would train on NaNs)."""
    for f in fields(obj):
        value = getattr(obj, f.name)
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"{prefix}.{f.name}", v, "a finite number")
            if is_dataclass(v):
                _check_finite(v, f"{prefix}.{f.name}")


def _value_at(node, key):
    try:
        return OmegaConf.select(OmegaConf.create(node) if not OmegaConf.is_config(node) else node, str(key))
    except Exception:
        return None


# Validated configs of this process, by their content without `seed` (see validate).
_VALIDATED: dict[str, RunSpec] = {}


def validate(cfg: DictConfig) -> RunSpec:
    """The one validation of a composed config: what the sweep precheck runs on every job before
    anything starts, and what the job runs again on its own config. No torch import.

    Merging into the schemas takes OmegaConf about 40 ms a config, and a sweep validates each
    job twice (precheck, then the job) with its seed replicates differing only in `seed`: a
    config validated before in this process is not merged again; its spec is copied and only
    the seed checked. Refusals are not kept (they raise each time)."""
    import copy
    import json

    plain = OmegaConf.to_container(cfg, resolve=True)
    try:
        key = json.dumps({k: v for k, v in plain.items() if k != "seed"}, default=repr)
    except (TypeError, ValueError):
        key = None
    seed = plain.get("seed", 0)
    if key is not None and key in _VALIDATED:
        check_seed(seed)
        spec = copy.deepcopy(_VALIDATED[key])
        spec.seed = seed
        return spec
    spec = _validate(OmegaConf.create(plain))  # a plain copy without the hydra node
    if key is not None:
        if len(_VALIDATED) >= 64:
            _VALIDATED.clear()
        try:
            _VALIDATED[key] = copy.deepcopy(spec)
        except Exception:  # a plugin schema holding something that does not copy: validated each time
            pass
    return spec


def check_callbacks(value) -> list[str]:
    """callbacks=[module:attribute, ...]: the form here; that each one imports, the shell's precheck."""
    import re

    value = [] if value is None else value
    items = list(value) if not isinstance(value, (str, bytes)) and hasattr(value, "__iter__") else None
    check(items is not None, "callbacks", value, "a list of 'module:attribute' user hooks, e.g. callbacks=[mypkg.hooks:Notify]")
    for i, item in enumerate(items):
        check(isinstance(item, str) and re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", item) is not None,
              f"callbacks[{i}]", item, "'module:attribute' (a dotted module path, a colon, a name in it)")
    return [str(i) for i in items]


def check_seed(seed) -> None:
    check(isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2**32, "seed", seed,
          "an integer in [0, 2^32) (numpy's seed range)")


def _validate(cfg: DictConfig) -> RunSpec:
    regs = registries()
    known = set(regs) | set(SINGLE) | {"seed", "name", "resume", "callbacks", "tags", "hydra"}
    for key in cfg:
        if key not in known:
            raise ConfigError(str(key), cfg[key], "unknown top-level key; valid: " + ", ".join(sorted(known - {"hydra"})))
    parts: dict[str, object] = {}
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
    check_seed(seed)
    tags = check_tags(OmegaConf.to_container(cfg.tags) if OmegaConf.is_config(cfg.get("tags")) else cfg.get("tags"))
    spec = RunSpec(seed=seed, name=str(name or ""), resume=bool(cfg.get("resume", False)), tags=tags,
                   callbacks=check_callbacks(cfg.get("callbacks")), **parts)
    check_combination(spec)
    return spec


# torchvision models whose residual blocks (torchvision.models.resnet BasicBlock, Bottleneck)
# take regularizer=stochastic_depth.
RESIDUAL_TORCHVISION = ("resnet", "resnext", "wide_resnet")

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
    check_trackers(spec.logger)
    arch, norm = spec.arch.name, spec.norm.name
    if arch == "torchvision" and norm != "none":
        raise ConfigError("norm", norm, "none with arch=torchvision (it keeps the model's own normalization)")
    if arch == "torchvision" and "dropout" in spec.regularizer:
        raise ConfigError("regularizer", "dropout", "arch=torchvision keeps the model's own dropout; drop the dropout regularizer")
    if "dropout" in spec.regularizer and spec.regularizer["dropout"].input_p > 0 and arch not in ("mlp", "cnn"):
        raise ConfigError("regularizer.dropout.input_p", spec.regularizer["dropout"].input_p,
                          f"0 with arch={arch} (input dropout is built into arch=mlp and arch=cnn only)")
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
    if "stochastic_depth" in spec.regularizer and lacks_residual_blocks(spec.arch):
        model = f" arch.model={spec.arch.model}" if arch == "torchvision" else ""
        raise ConfigError("regularizer", "stochastic_depth", f"an architecture with residual blocks: arch=resnet, or "
                          f"arch=torchvision with a ResNet ({', '.join(m + '*' for m in RESIDUAL_TORCHVISION)}); "
                          f"arch={arch}{model} has none")
    if spec.optimizer.name == "lbfgs" and spec.trainer.precision == "fp16":
        # fp16 needs a GradScaler, and GradScaler.step refuses closures: the closure would backpropagate
        # a scaled loss that L-BFGS's line search then compares with unscaled gradients
        raise ConfigError("trainer.precision", "fp16", "fp32 or bf16 with optimizer=lbfgs (fp16 needs a gradient "
                          "scaler, which cannot step L-BFGS's closure)")


def check_trackers(loggers: dict) -> None:
    """A chosen tracker whose package is missing: refused before training, naming the extra.
    find_spec locates the package without importing it."""
    from importlib.util import find_spec

    from trainlab.schemas.logger import EXTRA, needed_modules

    for name, schema in loggers.items():
        for module in needed_modules(name, schema):
            if find_spec(module) is None:
                raise ConfigError("logger", name, f"an installed tracker: logger={name} needs the `{module}` package ({EXTRA})")


def lacks_residual_blocks(arch) -> bool:
    """A built-in architecture without residual blocks (a plugin's is checked once built: build_model)."""
    if arch.name == "torchvision":
        return not str(arch.model).startswith(RESIDUAL_TORCHVISION)
    return arch.name in ("linear", "mlp", "cnn")
