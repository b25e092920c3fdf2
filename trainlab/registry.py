"""One registry per config group: an option name selects a schema and a builder.

The option name (`activation=elu`) is the stable public interface; the schema is
a dataclass holding that option's hyperparameters and their range checks, the
builder turns a validated schema instance into the object the run needs.
Adding an option means registering one more entry and shipping one YAML file.
"""
from dataclasses import dataclass
from typing import Callable

from trainlab.errors import ConfigError


@dataclass(frozen=True)
class Entry:
    name: str
    schema: type
    build: Callable


class Registry:
    def __init__(self, group: str):
        self.group = group
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, schema: type) -> Callable:
        def decorate(build: Callable) -> Callable:
            if name in self._entries:
                raise RuntimeError(f"{self.group} option {name!r} registered twice")
            self._entries[name] = Entry(name, schema, build)
            return build

        return decorate

    def __getitem__(self, name: str) -> Entry:
        if name not in self._entries:
            raise ConfigError(self.group, name, f"choose one of {', '.join(self.names())}")
        return self._entries[name]

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def names(self) -> list[str]:
        return sorted(self._entries)
