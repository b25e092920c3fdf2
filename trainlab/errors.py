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


class FileError(ConfigError):
    """A file that is not what it should be (a damaged or foreign checkpoint, an unreadable image):
    one line naming the file and what is wrong with it."""

    def __init__(self, path, problem: str):
        super().__init__("file", str(path), problem)

    @property
    def message(self) -> str:
        return f"{self.value}: {self.valid}"


class DiskFull(OSError):
    """No space left while writing a run's file: said in one line naming the file, not torch's
    "unexpected pos" from deep inside its zip writer."""

    def __init__(self, path):
        import errno

        super().__init__(errno.ENOSPC, f"no space left on device while writing {path}")
        self.path = str(path)

    def __str__(self) -> str:
        return self.strerror


class Stopped(KeyboardInterrupt):
    """SIGTERM before training installed its own handler (trainlab.engine.signals): the process
    stops as for Ctrl-C (a summary.json saying `interrupted`, exit code 143) instead of dying
    with an empty train.log and no summary."""

    def __init__(self, signum: int):
        import signal

        self.signum, self.signal_name = signum, signal.Signals(signum).name
        super().__init__(self.signal_name)
