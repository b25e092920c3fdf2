"""One registry per config group: an option name selects a schema, a description and a builder.

The option name (`activation=elu`) is the stable public interface. Every registry is
filled the same two ways:

    @ACTIVATIONS.option("elu", "ELU: smooth, negative saturation at -alpha")
    @dataclass
    class EluSchema: ...              # trainlab/schemas/<group>.py: the option's keys,
                                      # defaults and range checks; no torch import
    @ACTIVATIONS.builder("elu")
    def build_elu(cfg): ...           # next to the torch code that uses it

Schemas and builders live apart so that the CLI can validate a config (and answer
--help) without importing torch; a registry imports its builder module the first
time a builder is asked for. The shipped YAML in conf/ is generated from the schemas
(trainlab.schemas.yaml_export), so each default is written once.
"""
import importlib
from dataclasses import dataclass, is_dataclass
from typing import Callable

from trainlab.errors import ConfigError


@dataclass
class Entry:
    name: str
    schema: type
    description: str
    registry: "Registry"

    @property
    def build(self) -> Callable:
        return self.registry.builder_of(self.name)


class Registry:
    def __init__(self, group: str, builders: str | None = None):
        self.group = group
        self.builders_module = builders   # imported on the first builder look-up
        self._entries: dict[str, Entry] = {}
        self._builders: dict[str, Callable] = {}

    def option(self, name: str, description: str) -> Callable[[type], type]:
        """Class decorator: `name` is an option of this group with this schema."""
        def decorate(schema: type) -> type:
            if not is_dataclass(schema):
                raise TypeError(f"{self.group} option {name!r}: the schema must be a dataclass")
            if name in self._entries:
                raise RuntimeError(f"{self.group} option {name!r} registered twice")
            self._entries[name] = Entry(name, schema, description.strip(), self)
            return schema

        return decorate

    def builder(self, *names: str) -> Callable[[Callable], Callable]:
        """Function decorator: builds the objects of these options from their validated schemas."""
        def decorate(build: Callable) -> Callable:
            for name in names:
                if name not in self._entries:
                    raise RuntimeError(f"{self.group} builder for {name!r}, which has no option (schema) registered")
                if name in self._builders:
                    raise RuntimeError(f"{self.group} option {name!r} has two builders")
                self._builders[name] = build
            return build

        return decorate

    def builder_of(self, name: str) -> Callable:
        if name not in self._builders and self.builders_module:
            importlib.import_module(self.builders_module)
        entry = self[name]
        if entry.name not in self._builders:
            raise RuntimeError(f"{self.group} option {name!r} has a schema but no builder")
        return self._builders[entry.name]

    def __getitem__(self, name: str) -> Entry:
        if name not in self._entries:
            raise ConfigError(self.group, name, f"choose one of {', '.join(self.names())}")
        return self._entries[name]

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in self.names()]
