"""Which sweep jobs hydra/launcher=vectorized trains together, and what it refuses (no torch here).

Jobs whose overrides differ only in a plain `seed=N` are replicates of one configuration: they
share the data, the preprocessing and the architecture, so their parameters can be stacked and
trained as one model (trainlab.engine.stacked). Jobs that differ in anything else, the cross-
validation fold included (another training split, other preprocessing statistics), go to
separate groups.

`check_vectorizable` runs on every job in the sweep precheck (trainlab.app.precheck), before any
folder exists: an option that the stacked step cannot reproduce faithfully is refused in one
line naming it, rather than trained approximately.
"""
import os

from trainlab.errors import ConfigError

LAUNCHER = "VectorizedLauncher"  # the end of conf/hydra/launcher/vectorized.yaml's _target_
ARCHS = ("linear", "mlp", "cnn")
WHY = "hydra/launcher=vectorized"


def group_key(overrides: list[str]) -> tuple:
    """A job's overrides without its plain seed: equal keys, replicates of one configuration."""
    return tuple(o for o in overrides if o.partition("=")[0] != "seed")


def plan_groups(jobs: list[tuple[int, list[str]]], cap_of) -> list[list[tuple[int, list[str]]]]:
    """Jobs (number, overrides) in groups of replicates, in first-job order; `cap_of(job)` is the
    group size cap (trainer.replicas_per_group of that job's config)."""
    groups: dict[tuple, list[list]] = {}
    for job in jobs:
        chunks = groups.setdefault(group_key(job[1]), [[]])
        if len(chunks[-1]) >= cap_of(job):
            chunks.append([])
        chunks[-1].append(job)
    return [chunk for chunks in groups.values() for chunk in chunks]


def _refuse(key: str, value, valid: str) -> None:
    raise ConfigError(key, value, f"{valid} ({WHY} trains seed replicates as one stacked model)")


def check_sweeper(target: str) -> None:
    """Optuna asks for trials one at a time and prunes each on its own reports: no group to stack."""
    if target.endswith("OptunaSweeper"):
        _refuse("hydra/sweeper", "optuna", "trainlab's sweeper (grid or random search)")


def check_vectorizable(spec) -> None:
    """Refuse, in one line naming the option, what a stacked group cannot train as each replicate's
    own run would."""
    t = spec.trainer
    if int(os.environ.get("WORLD_SIZE") or 1) > 1:
        _refuse("hydra/launcher", "vectorized", "one process: not under torchrun (DDP)")
    if spec.optimizer.name == "lbfgs":
        _refuse("optimizer", "lbfgs", "an elementwise optimizer (sgd, momentum, nesterov, adam, adamw, rmsprop, "
                "adagrad, adadelta): L-BFGS's line search couples every element of a replicate")
    if spec.arch.name not in ARCHS:
        _refuse("arch", spec.arch.name, f"one of {', '.join(ARCHS)}")
    if spec.arch.name == "cnn" and spec.arch.pool == "fractional":
        _refuse("arch.pool", "fractional", "max, avg or none: fractional pooling draws its regions outside vmap")
    if spec.norm.name == "batchnorm":
        _refuse("norm", "batchnorm", "none, layernorm, groupnorm or instancenorm: batch norm's running "
                "statistics are updated in place, once for all replicates")
    for name in spec.regularizer:
        if name == "stochastic_depth":
            _refuse("regularizer", name, "none, dropout or a penalty/constraint")
    if spec.transfer is not None and spec.transfer.freeze:
        _refuse("transfer.freeze", list(spec.transfer.freeze), "[] (every parameter is stacked and trained)")
    if spec.schedule.name == "plateau":
        _refuse("schedule", "plateau", "a schedule that is a function of the step (plateau follows each replicate's "
                "own validation metric)")
    for key, value, ok, valid in (
            ("precision", t.precision, t.precision == "fp32", "fp32"),
            ("compile", t.compile, not t.compile, "false"),
            ("channels_last", t.channels_last, not t.channels_last, "false"),
            ("data_placement", t.data_placement, t.data_placement in ("auto", "device"),
             "auto or device: the stacked batch is gathered from splits on the device"),
            ("nonfinite", t.nonfinite, t.nonfinite == "stop", "stop (a diverged replicate stops alone)"),
            ("diagnostics", t.diagnostics, t.diagnostics != "full", "light or off (full hooks one model's activations)"),
            ("polyak.epochs", t.polyak.epochs, t.polyak.epochs == 0, "0 (off)"),
            ("checkpoint_every_minutes", t.checkpoint_every_minutes, t.checkpoint_every_minutes is None,
             "null: replicates' last.pt are written at epoch ends")):
        if not ok:
            _refuse(f"trainer.{key}", value, valid)
