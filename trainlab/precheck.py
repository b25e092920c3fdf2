"""Check `trainlab train` overrides before Hydra starts anything.

Hydra's own messages for a typo span several lines and end in a hint about
HYDRA_FULL_ERROR; here every combination a sweep would run is composed and
validated up front, and the first problem becomes one line naming the key,
the value and what is valid. Nothing is trained and nothing is written.
"""
import itertools
import os
from pathlib import Path

from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from trainlab.errors import ConfigError

CONF_DIR = Path(__file__).parent / "conf"
# Flags Hydra takes with a value after them.
FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
                    "--config-dir", "-cd", "--experimental-rerun"}
MAX_COMBINATIONS = 2000


def config_dirs() -> list[Path]:
    """The shipped configs plus the user's folders from TRAINLAB_CONFIG_PATH."""
    extra = [Path(p) for p in os.environ.get("TRAINLAB_CONFIG_PATH", "").split(os.pathsep) if p]
    return [CONF_DIR, *extra]


def group_options(group: str) -> list[str]:
    return sorted({p.stem for d in config_dirs() for p in (d / group).glob("*.yaml")})


def groups() -> list[str]:
    return sorted({p.name for d in config_dirs() if d.is_dir() for p in d.iterdir() if p.is_dir() and p.name != "hydra"})


def split_args(args: list[str]) -> tuple[list[str], list[str]]:
    """(hydra flags, overrides)."""
    flags, overrides, skip = [], [], False
    for arg in args:
        if skip:
            flags.append(arg)
            skip = False
        elif arg.startswith("-"):
            flags.append(arg)
            skip = arg in FLAGS_WITH_VALUE
        else:
            overrides.append(arg)
    return flags, overrides


def _values(override) -> list:
    """Every value a (possibly sweep) override takes, or None when it is a search range."""
    if override.is_sweep_override():
        try:
            return list(override.sweep_string_iterator())
        except Exception:
            return None
    return [override.get_value_element_as_str()]


def expand(overrides: list[str]) -> list[list[str]]:
    """The override lists of every job a basic sweep would launch (search ranges keep one placeholder)."""
    parser = OverridesParser.create()
    try:
        parsed = parser.parse_overrides(overrides)
    except Exception as err:
        raise ConfigError("override", " ".join(overrides), str(err).splitlines()[0]) from None
    axes = []
    for raw, ov in zip(overrides, parsed):
        if ov.key_or_group.startswith("hydra"):
            continue
        values = _values(ov)
        if values is None:  # interval()/tag ranges belong to a search sweeper: validated per job
            continue
        prefix = {None: "", "+": "+", "++": "++", "~": "~"}.get(_type_prefix(raw), "")
        key = ov.key_or_group + (f"@{ov.package}" if ov.package else "")
        axes.append([f"{prefix}{key}={v}" for v in values])
        _check_group_choice(ov.key_or_group, values)
    combos = list(itertools.islice(itertools.product(*axes), MAX_COMBINATIONS))
    return [list(c) for c in combos]


def _type_prefix(raw: str) -> str | None:
    for p in ("++", "+", "~"):
        if raw.startswith(p):
            return p
    return None


def _check_group_choice(key: str, values: list[str]) -> None:
    if key not in groups():
        return
    valid = group_options(key)
    for value in values:
        for option in _as_options(value):
            if option not in valid and option != "null":
                raise ConfigError(key, option, "choose one of " + ", ".join(valid))


def _as_options(value: str) -> list[str]:
    value = value.strip()
    if value.startswith("[") and value.endswith("]"):
        return [v.strip() for v in value[1:-1].split(",") if v.strip()]
    return [value]


def compose_checked(overrides: list[str]):
    """Compose one job's config; Hydra's errors become one-line ConfigErrors."""
    try:
        return compose(config_name="train", overrides=overrides)
    except Exception as err:
        raise _composition_error(err, overrides) from None


def _composition_error(err: Exception, overrides: list[str]) -> ConfigError:
    text = str(err)
    for ov in overrides:
        key, _, value = ov.lstrip("+~").partition("=")
        if f"'{key}'" in text or f"Could not override '{key}'" in text:
            parent, _, leaf = key.rpartition(".")
            return ConfigError(key, value, f"unknown key{_valid_keys_hint(parent, overrides, ov)}")
    return ConfigError("override", " ".join(overrides), text.splitlines()[0])


def _valid_keys_hint(parent: str, overrides: list[str], bad: str) -> str:
    try:
        cfg = compose(config_name="train", overrides=[o for o in overrides if o != bad])
        node = OmegaConf.select(cfg, parent) if parent else cfg
        keys = sorted(str(k) for k in node.keys()) if OmegaConf.is_dict(node) else []
    except Exception:
        keys = []
    where = f" in {parent}" if parent else ""
    return f"; valid keys{where}: {', '.join(keys)}" if keys else ""


def precheck(args: list[str]) -> int:
    """Validate every job of `trainlab train args`; returns the number of jobs checked."""
    from trainlab.config import validate

    flags, overrides = split_args(args)
    if {"--help", "-h", "--hydra-help", "--info", "-i", "--shell-completion", "-sc"} & set(flags):
        return 0
    combos = expand(overrides)
    GlobalHydra.instance().clear()
    with initialize_config_module("trainlab.conf", version_base=None):
        for combo in combos:
            validate(compose_checked(combo))
    GlobalHydra.instance().clear()
    return len(combos)
