"""The entry points of `trainlab check`, `inspect`, `gradcheck` and `lr-find`: their flags.

Nothing here imports torch. Each command builds its parser, parses and checks the
flags and composes the configuration (all torch-free), and only then imports its
implementation (check.py, commands.py), which imports torch: `--help` and bad input
answer at once instead of after the seconds torch takes to load.
"""
from __future__ import annotations

import importlib

from trainlab.app.diagnose_setup import Parser, load_spec, positive
from trainlab.errors import ConfigError


def _report(parser: Parser, argv: list[str], function: str, module: str = "trainlab.app.diagnose_commands",
            check_flags=None) -> int:
    """Parse, check the flags and the overrides (no torch yet), then hand over to the torch side."""
    args = parser.parse(argv)
    if args is None:  # --help was printed
        return 0
    if check_flags is not None:
        check_flags(args)
    spec = load_spec(args.overrides)
    return getattr(importlib.import_module(module), function)(args, spec)


def check_command(argv: list[str]) -> int:
    parser = Parser("check", "Sanity checks before training: initial loss, regularization, overfitting a tiny subset.")
    parser.add_argument("--tolerance", type=positive(float), default=0.1,
                        help="relative tolerance of the initial-loss check (default 0.1)")
    parser.add_argument("--examples", type=positive(int), default=20, help="examples to overfit (default 20)")
    parser.add_argument("--max-steps", type=positive(int), default=500,
                        help="full-batch steps allowed to overfit them (default 500)")
    parser.add_argument("--lr", type=positive(float), default=0.1, help="learning rate of the plain SGD (default 0.1)")
    parser.add_argument("--use-optimizer", action="store_true",
                        help="overfit with the configured optimizer instead of plain SGD")
    return _report(parser, argv, "check_report", module="trainlab.app.check_command")


def inspect_command(argv: list[str]) -> int:
    parser = Parser("inspect", "Activation and gradient statistics of every hidden layer at initialization.")
    parser.add_argument("--gaussian", action="store_true", help="feed unit-Gaussian input instead of real data")
    parser.add_argument("--gaussian-width", choices=("layer", "data"), default="layer",
                        help="with --gaussian: input as wide as an MLP's first hidden layer (layer, the classic "
                             "study's setting; default) or of the dataset's shape (data)")
    parser.add_argument("--batch", type=positive(int), default=None,
                        help="examples in the batch (default 256; 1000 with --gaussian, for stable statistics)")
    return _report(parser, argv, "inspect_report", check_flags=_default_batch)


def _default_batch(args) -> None:
    if args.batch is None:
        args.batch = 1000 if args.gaussian else 256


def gradcheck_command(argv: list[str]) -> int:
    parser = Parser("gradcheck", "Compare backprop with finite differences on the configured model and loss.")
    parser.add_argument("--examples", type=positive(int), default=4, help="training examples in the batch (default 4)")
    parser.add_argument("--entries", type=positive(int), default=20,
                        help="entries sampled per parameter tensor (default 20)")
    return _report(parser, argv, "gradcheck_report")


def lr_find_command(argv: list[str]) -> int:
    parser = Parser("lr-find", "Learning-rate range test: sweep the lr upwards until the loss explodes.")
    parser.add_argument("--steps", type=positive(int), default=100, help="training steps of the sweep (default 100)")
    parser.add_argument("--lr-min", type=positive(float), default=1e-7, help="first learning rate (default 1e-7)")
    parser.add_argument("--lr-max", type=positive(float), default=10.0, help="last learning rate (default 10)")
    return _report(parser, argv, "lr_find_report", check_flags=_check_lr_range)


def _check_lr_range(args) -> None:
    if args.steps < 2:
        raise ConfigError("--steps", args.steps, "at least 2 steps")
    if args.lr_min >= args.lr_max:
        raise ConfigError("--lr-min", args.lr_min, f"below --lr-max ({args.lr_max:g})")
