"""Which numbers a table column holds, how to read them and how to print them.

A metric is named the way users type it on the command line:

    best.val_acc        any numeric entry of summary.json, by dotted path
    metrics:val_loss    the last value of a metrics.csv column
    gap, epochs_to(val_acc>=0.9), auc(val_acc), best(col), ...
                        derived from a job's metrics.csv curve (trainlab.sweep.derived)

Its *kind* is guessed from the name and decides both the display (accuracies
are fractions on disk, shown as percentages) and the sort direction: the
larger the better for accuracies, the smaller the better for everything else
(losses, wall time, epochs to finish).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from trainlab.errors import ConfigError
from trainlab.sweep import derived

from trainlab.sweep.runs import RunRecord

DEFAULT_METRICS = ("best.val_acc", "test.acc", "final.train_loss", "epochs_run", "wall_time_s")

# What the engine writes into summary.json; listed so that a typo is caught even
# when every job of the sweep failed before writing its summary.
SUMMARY_PATHS = (
    "best.epoch", "best.step", "best.val_loss", "best.val_acc",
    "final.epoch", "final.step", "final.train_loss", "final.train_acc",
    "final.val_loss", "final.val_acc", "final.lr", "final.train_eval_loss", "final.train_eval_acc",
    "test.loss", "test.acc", "epochs_run", "wall_time_s", "seed",
)

LABELS = {
    "best.val_acc": "best val acc (%)",
    "best.val_loss": "best val loss",
    "test.acc": "test acc (%)",
    "test.loss": "test loss",
    "final.train_loss": "final train loss",
    "final.train_acc": "final train acc (%)",
    "final.val_loss": "final val loss",
    "final.val_acc": "final val acc (%)",
    "final.train_eval_acc": "final train acc, eval mode (%)",
    "epochs_run": "epochs",
    "test.ema_acc": "test acc EMA (%)",
    "test.polyak_acc": "test acc Polyak (%)",
    "test.tta_acc": "test acc TTA (%)",
    "wall_time_s": "wall time (s)",
}

METRICS_PREFIX = "metrics:"


@dataclass(frozen=True)
class Metric:
    spec: str  # as typed: "best.val_acc" or "metrics:val_acc"

    @property
    def from_csv(self) -> bool:
        return self.spec.startswith(METRICS_PREFIX)

    @property
    def name(self) -> str:
        return self.spec[len(METRICS_PREFIX):] if self.from_csv else self.spec

    @property
    def derived(self) -> derived.Derived | None:
        return None if self.from_csv else derived.parse(self.spec)

    @property
    def kind(self) -> str:
        if self.derived is not None:
            return self.derived.kind or Metric(METRICS_PREFIX + self.derived.column).kind
        words = set(re.split(r"[._\-:]", self.name.lower()))
        if words & {"acc", "accuracy", "top1", "top5"}:
            return "percent"
        if "loss" in words:
            return "loss"
        if self.name.endswith("_s") or "time" in words:
            return "seconds"
        if words & {"epoch", "epochs", "step", "steps", "epochs_run"}:
            return "count"
        return "number"

    @property
    def higher_is_better(self) -> bool:
        if self.derived is not None and self.derived.higher_is_better is not None:
            return self.derived.higher_is_better
        return self.kind == "percent"

    @property
    def lead(self) -> bool:
        """A result (accuracy, loss, gap, arrival time) rather than a cost (wall time, epochs run):
        the columns that get intervals in the table and a panel in table.png."""
        return self.spec not in ("epochs_run", "best.epoch", "best.step", "final.epoch", "final.step") \
            and self.kind != "seconds"

    @property
    def label(self) -> str:
        if self.spec in LABELS:
            return LABELS[self.spec]
        if self.derived is not None:
            return self.derived.label
        return self.spec + (" (%)" if self.kind == "percent" else "")

    def value(self, record: RunRecord) -> float | str | None:
        """The job's number; None when it has none; derived.NOT_REACHED for a threshold never reached."""
        if self.derived is not None:
            return self.derived.value(record.metrics)
        return record.last(self.name) if self.from_csv else record.summary_value(self.name)

    def format(self, value: float, signed: bool = False) -> str:
        """Display text; `signed` for differences (Δ vs baseline)."""
        if not math.isfinite(value):
            return str(value)  # "nan", "inf", "-inf"
        sign = "+" if signed else ""
        if self.kind == "percent":
            return f"{100 * value:{sign}.2f}"
        if self.kind == "loss":
            return f"{value:{sign}.4f}"
        if self.kind == "seconds":
            return f"{value:{sign}.1f}"
        if self.kind == "count":
            return f"{value:{sign}.0f}" if value == int(value) else f"{value:{sign}.1f}"
        return f"{value:{sign}.4g}"


def parse_metrics(specs: list[str] | None, records: list[RunRecord], arg: str = "--metric",
                  swept: list[str] = ()) -> list[Metric]:
    """Metrics by name, checked against what the sweep's files actually hold.

    Raises ConfigError naming the argument, the bad name and the valid ones.
    """
    summary_paths = set(SUMMARY_PATHS)
    columns: set[str] = set()
    for record in records:
        summary_paths.update(_numeric_paths(record.summary))
        columns.update(record.metrics)
    metrics = [Metric(s.strip()) for s in (specs or default_metrics(list(swept), summary_paths, columns))]
    for metric in metrics:
        if derived.looks_derived(metric.spec):
            parsed = metric.derived
            missing = [] if parsed is None else [c for c in parsed.columns if c not in columns]
            if parsed is None or (missing and columns):
                problem = f"no metrics.csv column {', '.join(missing)} in this sweep; " if parsed else ""
                threshold = derived.bad_threshold(metric.spec)
                if threshold is not None:
                    problem = f"its threshold {threshold!r} is not a number (write e.g. 0.9, 90, 90% or 1e-3); "
                raise ConfigError(arg, metric.spec, f"{problem}derived metrics are {derived.SYNTAX} "
                                                    f"with a metrics.csv column ({', '.join(sorted(columns)) or 'none found'})")
            continue
        known = columns if metric.from_csv else summary_paths
        if metric.name not in known:
            shown_columns = ", ".join(sorted(columns)) or "none found in this sweep"
            raise ConfigError(
                arg, metric.spec,
                f"use a summary.json path ({', '.join(sorted(summary_paths))}) "
                f"or metrics:<column> with a metrics.csv column ({shown_columns})",
            )
    return metrics


def default_metrics(swept: list[str], summary_paths: set[str], columns: set[str]) -> list[str]:
    """The default columns, following the sweep: the test accuracy of the EMA/Polyak weights and of
    TTA when the jobs report one, and the derived metric of a swept group (gap for regularizers)."""
    extra = [p for p in ("test.ema_acc", "test.polyak_acc", "test.tta_acc") if p in summary_paths]
    return [*DEFAULT_METRICS[:2], *extra, *derived.natural_metrics(swept, columns), *DEFAULT_METRICS[2:]]


def _numeric_paths(node: dict, prefix: str = "") -> list[str]:
    """Dotted paths of the numeric leaves of a summary (the engine may add entries)."""
    paths = []
    for key, value in node.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            paths += _numeric_paths(value, path + ".")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            paths.append(path)
    return paths
