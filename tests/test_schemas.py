"""One source of defaults: every shipped option YAML is generated from its schema and equals it
field by field; every option has a schema of its own and a description; none imports torch."""
import subprocess
import sys
from dataclasses import fields, is_dataclass

import pytest
import yaml

from trainlab.app.compose import conf_dir, group_options
from trainlab.schemas import COMBINABLE, GROUP_MODULES, SINGLE, registries, single_schema
from trainlab.schemas.yaml_export import default_of, generated_files

# Options written by hand: presets combining other options, and the empty choice.
PRESETS = {("augment", "standard"), ("augment", "heavy"), ("augment", "none"), ("regularizer", "none"), ("logger", "none"),
           ("trainer", "debug")}


def schema_defaults(schema) -> dict:
    out = {}
    for f in fields(schema):
        value = default_of(f)
        out[f.name] = schema_defaults(type(value)) if is_dataclass(value) else value
    return out


def option_schemas():
    for group, registry in registries(plugins=False).items():
        for entry in registry.entries():
            yield group, entry.name, entry.schema
    for group in SINGLE:
        yield group, "default", single_schema(group)


@pytest.mark.parametrize("group, option, schema", list(option_schemas()), ids=lambda v: getattr(v, "__name__", v))
def test_yaml_equals_its_schema_field_by_field(group, option, schema):
    shipped = yaml.safe_load((conf_dir() / group / f"{option}.yaml").read_text())
    if group in COMBINABLE:
        shipped = shipped[option] or {}
    expected = schema_defaults(schema)
    if group in COMBINABLE:
        expected.pop("name", None)
    assert shipped == expected


def test_shipped_yaml_is_exactly_what_the_exporter_writes():
    stale = [str(p) for p, text in generated_files(conf_dir()).items() if not p.is_file() or p.read_text() != text]
    assert not stale, f"regenerate with `python -m trainlab.schemas.yaml_export`: {stale}"


def test_every_shipped_option_has_a_schema_of_its_own_or_is_a_preset():
    regs = registries(plugins=False)
    for group in GROUP_MODULES:
        for option in group_options(group):
            assert option in regs[group] or (group, option) in PRESETS, (group, option)
        schemas = [regs[group][name].schema for name in regs[group].names()]
        assert len(set(schemas)) == len(schemas), f"{group}: options share a schema"
        for entry in regs[group].entries():
            assert entry.description and "\n" not in entry.description, (group, entry.name)


def test_schemas_import_no_torch():
    code = "import sys, trainlab.schemas as s, trainlab.config; s.registries(); print('torch' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.stdout.strip() == "False", res.stderr
