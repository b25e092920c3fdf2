"""What every diagnostic command shares: arguments, the configured run, output.

A diagnostic command takes the same overrides as `trainlab train` plus its own
`--flags`, builds the run exactly as training would (compose -> validate ->
assemble, so the model is the seeded initialization training starts from),
prints rich tables (plain ASCII ones when stdout is not a terminal) and writes
its figures and a JSON record into `--out` (default
`outputs/diagnose/<command>_<timestamp>/`).

Importing this module does not import torch (nor rich): the commands' entry points
(entry.py) parse their flags and compose the configuration with it before they load
torch, so torch is imported inside the functions that need it.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from trainlab.errors import ConfigError

if TYPE_CHECKING:
    from rich.table import Table


class Parser(argparse.ArgumentParser):
    """argparse for `trainlab <command> [overrides] [--flags]`, with bad flags as one-line ConfigErrors."""

    def __init__(self, command: str, description: str):
        super().__init__(prog=f"trainlab {command}", description=description)
        self.command = command
        self.add_argument("overrides", nargs="*", metavar="OVERRIDE",
                          help="the same key=value / group=option overrides `trainlab train` takes")
        self.add_argument("--out", metavar="DIR", help=f"output folder (default outputs/diagnose/{command}_<timestamp>/)")

    def parse(self, argv: list[str]) -> argparse.Namespace | None:
        """The parsed arguments, or None after --help has been printed."""
        self._argv = list(argv)
        try:
            # intermixed: overrides may come before or after the flags
            args = self.parse_intermixed_args(argv)
        except SystemExit as done:
            if done.code in (0, None):
                return None
            raise
        from trainlab.app.run_folder import check_writable

        # the output folder is written last: a read-only one is said now, not after the work
        check_writable("--out", args.out or "outputs/diagnose")
        return args

    def error(self, message: str):
        flag = re.match(r"argument (\S+?)(?:/\S+)?: (.*)", message)
        if flag:
            name, why = flag.groups()
            raise ConfigError(name, self._value_after(name), why)
        unknown = re.match(r"unrecognized arguments: (.*)", message)
        if unknown:
            flags = ", ".join(a.option_strings[-1] for a in self._actions if a.option_strings)
            raise ConfigError(self.command, unknown.group(1), f"unknown option; valid: {flags}")
        raise ConfigError(self.command, " ".join(self._argv), message)

    def _value_after(self, flag: str):
        argv = getattr(self, "_argv", [])
        for i, arg in enumerate(argv):
            if arg == flag:
                return argv[i + 1] if i + 1 < len(argv) else None
            if arg.startswith(flag + "="):
                return arg.split("=", 1)[1]
        return None


def positive(kind: type):
    """An argparse type: a number > 0 of `kind`."""

    def convert(text: str):
        value = kind(text)
        if not value > 0 or value == float("inf"):  # nan fails `> 0`; inf is no tolerance or rate to run with
            raise argparse.ArgumentTypeError("a positive integer" if kind is int else "a positive number (not inf or nan)")
        return value

    convert.__name__ = kind.__name__  # argparse names the type in "invalid int value" messages
    return convert


def load_spec(overrides: list[str]):
    """The validated RunSpec of one configuration, or one-line ConfigErrors like `trainlab train`."""
    from trainlab.app.compose import compose_job
    from trainlab.config import validate
    from trainlab.app.sweep_overrides import expand

    bad = [o for o in overrides if o.startswith("-") or "=" not in o and not o.startswith("~")]
    if bad:
        raise ConfigError("override", bad[0], "key=value or group=option (the overrides `trainlab train` takes)")
    if len(expand(overrides)) > 1:
        raise ConfigError("overrides", " ".join(overrides),
                          "one configuration; sweeps (a,b) are for `trainlab train -m`")
    spec = validate(compose_job(overrides))
    from trainlab.devices import check_device

    check_device("trainer.device", spec.trainer.device)
    return spec


def assemble_run(spec, *, regularization: bool = True):
    """(components, device) of `spec`, as training builds them. Without `regularization`
    the penalties, dropout, constraints and augmentation are all off (the seeded
    weights are the same: none of them draws random numbers at build time)."""
    from trainlab.engine.assemble import assemble, resolve_device

    if not regularization:
        spec = replace(spec, regularizer={}, augment={})
    device = resolve_device(spec.trainer.device)
    return assemble(spec, device), device


def sample_batch(c, n: int, seed: int):
    """n training examples (a seeded random choice), preprocessed, on the training device."""
    import torch

    from trainlab.data.preprocess import to_float

    split = c.splits.train
    generator = torch.Generator().manual_seed(seed)
    x, y = c.training_examples(torch.randperm(len(split), generator=generator)[:n])
    return c.preprocess(to_float(x)), y


def out_dir(args, command: str) -> Path:
    """The output folder, created; a timestamped one below outputs/diagnose/ by default."""
    if args.out:
        path = Path(args.out)
        if path.exists() and not path.is_dir():
            raise ConfigError("--out", args.out, "a folder (it is a file)")
    else:
        path = Path("outputs") / "diagnose" / f"{command}_{datetime.now():%Y-%m-%d_%H-%M-%S-%f}"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError("--out", str(path), f"a folder this process can write ({err.strerror})") from None
    return path


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data, indent=2, default=_plain) + "\n")
    return path


def _plain(value):
    import torch  # already loaded: only the implementations, which run on torch, write JSON

    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def print_table(table: Table) -> None:
    """A rich table on a terminal; ASCII lines without colour otherwise (logs, CI, pipes)."""
    from rich import box
    from rich.console import Console

    if sys.stdout.isatty():
        Console().print(table)
        return
    table.box = box.ASCII
    Console(file=sys.stdout, width=160, color_system=None, highlight=False).print(table)
