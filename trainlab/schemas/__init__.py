"""The schemas of every config group's options: keys, defaults, units and range checks.

No torch here: `trainlab train` validates every job of a sweep, and answers bad
input, before anything imports torch. The builders (trainlab.nn, .data, .optim)
attach themselves to these registries by option name.
"""
import importlib

# group -> the name of its registry in trainlab.schemas.<group>
GROUP_MODULES = {"dataset": "DATASETS", "preprocess": "PREPROCESS", "arch": "ARCHS", "activation": "ACTIVATIONS",
                 "init": "INITS", "norm": "NORMS", "loss": "LOSSES", "optimizer": "OPTIMIZERS",
                 "schedule": "SCHEDULES", "regularizer": "REGULARIZERS", "augment": "AUGMENTS",
                 "logger": "LOGGERS"}
# Groups with one schema whose YAML is conf/<group>/default.yaml (trainer=debug is a hand-written preset on top).
SINGLE = {"trainer": "TrainerSchema", "transfer": "TransferSchema"}

# Groups whose options combine (`regularizer=[l2,dropout]`): each option lives under its own key.
COMBINABLE = ("regularizer", "augment", "logger")


def registries(plugins: bool = True) -> dict:
    """Group name -> registry, after the user's plugins registered their options."""
    if plugins:
        from trainlab.plugins import load_plugins

        load_plugins()
    return {group: registry_of(group) for group in GROUP_MODULES}


def registry_of(group: str):
    return getattr(importlib.import_module(f"trainlab.schemas.{group}"), GROUP_MODULES[group])


def single_schema(group: str) -> type:
    return getattr(importlib.import_module(f"trainlab.schemas.{group}"), SINGLE[group])
