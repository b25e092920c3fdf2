"""The overrides of a `trainlab train` command line: Hydra's flags set apart, and a sweep's values
expanded into the jobs it will run (every combination, each composed and checked by the precheck)."""
import itertools

from hydra.core.override_parser.overrides_parser import OverridesParser

from trainlab.app.compose import compose_job, group_options, groups
from trainlab.app.override_errors import parse_error
from trainlab.errors import ConfigError

# Flags Hydra takes with a value after them.
FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
                    "--config-dir", "-cd", "--experimental-rerun"}
MAX_COMBINATIONS = 2000


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
        raise parse_error(overrides, err) from None
    axes = []
    for raw, ov in zip(overrides, parsed):
        if not ov.key_or_group:
            raise ConfigError("override", raw, "key=value (the key before '=' is missing)")
        if ov.key_or_group.startswith("hydra"):
            continue
        values = _values(ov)
        if values is None:  # interval()/tag ranges belong to a search sweeper: validated per job
            continue
        prefix = {None: "", "+": "+", "++": "++", "~": "~"}.get(type_prefix(raw), "")
        key = ov.key_or_group + (f"@{ov.package}" if ov.package else "")
        axes.append([f"{prefix}{key}={v}" for v in values])
        check_group_choice(ov.key_or_group, values)
    combos = list(itertools.islice(itertools.product(*axes), MAX_COMBINATIONS))
    return [list(c) for c in combos]


def type_prefix(raw: str) -> str | None:
    for p in ("++", "+", "~"):
        if raw.startswith(p):
            return p
    return None


def check_group_choice(key: str, values: list[str]) -> None:
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
    """One job's config (trainlab.app.compose.compose_job): Hydra's errors are one-line ConfigErrors."""
    return compose_job(overrides)
