"""Write conf/<group>/<option>.yaml from the option's schema, so each default is written once.

The schema dataclass is the source: its fields, defaults and the comment after each
field (units, valid values) become the YAML's keys, values and comments; the option's
description and the schema's docstring become the header. A field's comment may go on
over the next lines as lines holding only a comment.

    python -m trainlab.schemas.yaml_export          # rewrite every generated YAML
    python -m trainlab.schemas.yaml_export --check  # exit 1 if any differs (tests/test_schemas.py)
    python -m trainlab.schemas.yaml_export --group init --group norm   # only these groups

Presets that combine options (augment=standard, trainer=debug, experiment=*) are
written by hand and are not touched.
"""
import inspect
import re
import sys
import textwrap
from dataclasses import MISSING, fields, is_dataclass
from pathlib import Path

import yaml

FIELD_LINE = re.compile(r"^    (\w+)\s*:[^=#]+=[^#]*(?:#\s?(.*))?$")  # `    name: type = default  # comment`
COMMENT_ONLY = re.compile(r"^\s+#\s?(.*)$")
COMMENT_COLUMN = 22  # values start at the key, comments at this column (or two spaces after the value)


def field_comments(schema: type) -> dict[str, list[str]]:
    """Field name -> its comment lines, read from the class bodies (a subclass's comments win)."""
    comments: dict[str, list[str]] = {}
    for cls in reversed([c for c in schema.__mro__ if is_dataclass(c)]):
        try:
            lines = inspect.getsource(cls).splitlines()
        except (OSError, TypeError):
            continue
        current = None
        for line in lines[1:]:
            field_match, comment_match = FIELD_LINE.match(line), COMMENT_ONLY.match(line)
            if field_match:
                current = field_match.group(1)
                text = (field_match.group(2) or "").strip()
                if text or current not in comments:  # a redeclared default keeps its base class's comment
                    comments[current] = [text] if text else []
            elif comment_match and current is not None and comments[current]:
                comments[current].append(comment_match.group(1).strip())
            else:
                current = None
    return comments


def default_of(f):
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    raise TypeError(f"field {f.name} has no default: every schema field needs one")


def _scalar(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10_000, allow_unicode=True).strip().removesuffix("\n...").removesuffix("...").strip()


def _lines(schema_or_obj, indent: int, skip: set[str]) -> list[str]:
    schema = schema_or_obj if isinstance(schema_or_obj, type) else type(schema_or_obj)
    comments = field_comments(schema)
    out = []
    for f in fields(schema):
        if f.name in skip:
            continue
        value = default_of(f) if isinstance(schema_or_obj, type) else getattr(schema_or_obj, f.name)
        pad = " " * indent
        notes = comments.get(f.name, [])
        if is_dataclass(value):
            head = f"{pad}{f.name}:"
            out.append(_with_comment(head, notes[:1]))
            out += [" " * COMMENT_COLUMN + f"# {n}" for n in notes[1:]]
            out += _lines(value, indent + 2, set())
            continue
        head = f"{pad}{f.name}: {_scalar(value)}"
        out.append(_with_comment(head, notes[:1]))
        column = max(COMMENT_COLUMN, len(head) + 2)
        out += [" " * column + f"# {n}" for n in notes[1:]]
    return out


def _with_comment(head: str, notes: list[str]) -> str:
    if not notes:
        return head
    return head.ljust(max(COMMENT_COLUMN, len(head) + 2)) + f"# {notes[0]}"


def render(schema: type, description: str | None, key: str | None = None) -> str:
    """The YAML text of one option: its keys at the top level, or under `key` (combinable groups)."""
    header = [f"# {description}"] if description else []
    doc = inspect.getdoc(schema)
    if doc and not doc.startswith(schema.__name__ + "("):  # dataclasses invent a docstring
        header += [f"# {line}".rstrip() for line in textwrap.dedent(doc).splitlines()]
    header.append("# Generated from the schema by `python -m trainlab.schemas.yaml_export`: edit the schema.")
    if key is not None:
        body = _lines(schema, 2, {"name"})
        body = [f"{key}:"] + body if body else [f"{key}: {{}}"]
    else:
        body = _lines(schema, 0, set())
    return "\n".join(header + body) + "\n"


def generated_files(conf: Path, only: set[str] = frozenset()) -> dict[Path, str]:
    """Every generated YAML path (of the groups in `only`, or all) -> its text."""
    from trainlab.schemas import COMBINABLE, GROUP_MODULES, SINGLE, registry_of, single_schema

    out = {}
    for group in GROUP_MODULES:
        if only and group not in only:
            continue
        for entry in registry_of(group).entries():
            key = entry.name if group in COMBINABLE else None
            out[conf / group / f"{entry.name}.yaml"] = render(entry.schema, entry.description, key)
    for group in SINGLE:
        if not only or group in only:
            out[conf / group / "default.yaml"] = render(single_schema(group), None)
    return out


def main(argv: list[str]) -> int:
    from trainlab.schemas.files import conf_dir

    conf = conf_dir()
    only = {argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--group"}
    stale = []
    for path, text in generated_files(conf, only).items():
        if path.is_file() and path.read_text() == text:
            continue
        stale.append(path)
        if "--check" not in argv:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    verb = "differ from their schemas" if "--check" in argv else "written"
    for path in stale:
        print(f"{path.relative_to(conf.parent)}: {verb}")
    return 1 if stale and "--check" in argv else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
