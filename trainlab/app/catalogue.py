"""`trainlab list [GROUP ...]`: every option of every config group, its description and its
keys with their defaults and units, read from the schemas (no torch import).

Options that exist only as YAML (presets such as augment=standard, trainer=debug, the
experiment studies, and the user's own files in TRAINLAB_CONFIG_PATH) are listed with the
first comment line of their file.
"""
import sys
from dataclasses import fields, is_dataclass
from pathlib import Path

from trainlab.app.compose import config_dirs, group_options, groups
from trainlab.errors import ConfigError


def list_command(args: list[str]) -> int:
    if any(a in ("-h", "--help") for a in args):
        print("usage: trainlab list [GROUP ...]\n\nEvery option of the config groups (all groups, or the ones named), "
              "with its description and keys (default, units).")
        return 0
    known = groups()
    for group in args:
        if group not in known:
            raise ConfigError("GROUP", group, "a config group: " + ", ".join(known))
    print("\n\n".join(describe_group(g) for g in (args or known)))
    return 0


def describe_group(group: str) -> str:
    from trainlab.schemas import COMBINABLE, GROUP_MODULES, SINGLE, registries, single_schema

    registry = registries()[group] if group in GROUP_MODULES else None
    how = f"{group}=[a,b]" if group in COMBINABLE else f"{group}=<option>"
    lines = [f"{group}  ({how}; keys: {group}.<key>=value)"]
    for option in group_options(group):
        if registry is not None and option in registry:
            entry = registry[option]
            lines.append(f"  {option:<14}  {entry.description}")
            lines += _keys(entry.schema, "      ", skip={"name"})
        elif group in SINGLE and option == "default":
            lines.append(f"  {option:<14}  {_first_comment(group, option)}")
            lines += _keys(single_schema(group), "      ")
        else:
            lines.append(f"  {option:<14}  {_first_comment(group, option)}  (preset)")
    return "\n".join(lines)


def schema_keys(schema: type, skip=frozenset(), prefix: str = ""):
    """(dotted key, field, default, description, nested) for each field of a schema, a nested schema
    first as its own entry (nested=True) then its fields: the walk `trainlab list` and the docs'
    reference pages (scripts/gen_reference.py) both render."""
    from trainlab.schemas.yaml_export import default_of, field_comments

    comments = field_comments(schema)
    for f in fields(schema):
        if f.name in skip:
            continue
        value = default_of(f)
        note = " ".join(comments.get(f.name, []))
        yield prefix + f.name, f, value, note, is_dataclass(value)
        if is_dataclass(value):
            yield from schema_keys(type(value), prefix=f"{prefix}{f.name}.")


def _keys(schema: type, indent: str, skip=frozenset(), prefix: str = "") -> list[str]:
    out = []
    for key, _, value, note, nested in schema_keys(schema, skip, prefix):
        if nested:
            out.append(f"{indent}{key}.*{'  # ' + note if note else ''}")
            continue
        shown = "null" if value is None else str(value).lower() if isinstance(value, bool) else repr(value) if isinstance(value, str) else str(value)
        head = f"{indent}{key} = {shown}"
        out.append(f"{head:<44}# {note}" if note else head)
    return out


def _first_comment(group: str, option: str) -> str:
    for folder in config_dirs():
        path = Path(folder) / group / f"{option}.yaml"
        if path.is_file():
            for line in path.read_text().splitlines():
                text = line.strip()
                if text.startswith("#") and not text.startswith("# @package"):
                    return text.lstrip("# ").strip()
    return ""


if __name__ == "__main__":
    sys.exit(list_command(sys.argv[1:]))
