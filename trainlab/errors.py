"""User-facing errors: one line naming the key, the bad value and what is valid."""


class ConfigError(Exception):
    """Bad input found before training starts.

    `key` is the dotted config key (or the command argument) at fault; groups
    prefix their own name with `within()` so schemas can stay group-agnostic.
    """

    def __init__(self, key: str, value, valid: str):
        self.key, self.value, self.valid = key, value, valid
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return f"{self.key}={self.value!r} is not valid: {self.valid}"

    def __str__(self) -> str:
        return self.message

    def within(self, prefix: str) -> "ConfigError":
        return ConfigError(f"{prefix}.{self.key}" if self.key else prefix, self.value, self.valid)


def check(ok: bool, key: str, value, valid: str) -> None:
    """Raise a ConfigError unless `ok`; schemas call this from __post_init__."""
    if not ok:
        raise ConfigError(key, value, valid)
