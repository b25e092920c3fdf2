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
from trainlab.schemas.trainer import TrainerSchema


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


def load_plugins() -> None:
    """Import the user's modules that register their own options: the `trainlab.plugins`
    entry-point group of installed packages, and TRAINLAB_PLUGINS (comma-separated modules)."""
    import importlib
    import os
    from importlib.metadata import entry_points

    for ep in entry_points(group="trainlab.plugins"):
        ep.load()
    for module in filter(None, (m.strip() for m in os.environ.get("TRAINLAB_PLUGINS", "").split(","))):
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ConfigError("TRAINLAB_PLUGINS", module, f"an importable module ({err})") from None


def registries() -> dict:
    """Group name -> registry. Imported lazily: the CLI validates without importing torch twice."""
    load_plugins()
    from trainlab.data.augment import AUGMENTS
    from trainlab.data.datasets import DATASETS
    from trainlab.data.preprocess import PREPROCESS
    from trainlab.nn.activations import ACTIVATIONS
    from trainlab.nn.archs import ARCHS
    from trainlab.nn.init import INITS
    from trainlab.nn.norms import NORMS
    from trainlab.optim.losses import LOSSES
    from trainlab.optim.optimizers import OPTIMIZERS
    from trainlab.optim.regularizers import REGULARIZERS
    from trainlab.optim.schedules import SCHEDULES

    return {"dataset": DATASETS, "preprocess": PREPROCESS, "arch": ARCHS, "activation": ACTIVATIONS,
            "init": INITS, "norm": NORMS, "loss": LOSSES, "optimizer": OPTIMIZERS, "schedule": SCHEDULES,
            "regularizer": REGULARIZERS, "augment": AUGMENTS}


# Groups whose options combine (`regularizer=[l2,dropout]`): each option lives under its own key.
COMBINABLE = ("regularizer", "augment")


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
    regs = registries()
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))  # a plain copy without the hydra node
    known = set(regs) | {"seed", "name", "resume", "trainer", "transfer", "hydra"}
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
    parts["trainer"] = to_schema(TrainerSchema, cfg.get("trainer") or {}, "trainer")
    from trainlab.engine.transfer import TransferSchema

    parts["transfer"] = to_schema(TransferSchema, cfg.get("transfer") or {}, "transfer")
    seed, name = cfg.get("seed", 0), cfg.get("name", "")
    check(isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0, "seed", seed, "a non-negative integer")
    return RunSpec(seed=seed, name=str(name or ""), resume=bool(cfg.get("resume", False)), **parts)
