"""A metric name given before any job ran (the Optuna objective, a sweep's table columns), read by
the table's own parser (trainlab.sweep.metric, trainlab.sweep.derived) and checked against what a
job can write: `objective=nosuch.metric` used to train every trial and record each as FAIL."""
from __future__ import annotations

import re

from trainlab.errors import ConfigError

# summary.json entries beside trainlab.sweep.metric.SUMMARY_PATHS that some runs write
# (trainlab.engine.summary.run_summary; test.* from trainlab.engine.run: EMA, Polyak, TTA, top-5)
EXTRA_SUMMARY_PATHS = ("steps", "skipped_steps", "setup_s", "process_s", "threads", "peak_rss_mb", "num_params",
                       "diverged_at_step", "world_size", "final.train_penalty", "test.top5_acc",
                       "test.ema_loss", "test.ema_acc", "test.polyak_loss", "test.polyak_acc", "test.polyak_epochs",
                       "test.tta_loss", "test.tta_acc", "test.tta_views")
# metrics.csv columns beside trainlab.engine.metrics.COLUMNS (trainlab.engine.run's evaluation row):
# top-5 and per-class accuracy, the EMA and Polyak weights' validation, live diagnostics (diag/...)
EXTRA_COLUMNS = re.compile(r"^(val_top5_acc|val_acc_c\d+|val_(loss|acc)_(ema|polyak)|diag/.+)$")


def check_metric(key: str, spec) -> None:
    from trainlab.engine.metrics import COLUMNS
    from trainlab.sweep import derived
    from trainlab.sweep.metric import SUMMARY_PATHS, Metric

    metric = Metric(str(spec).strip())

    def is_column(name: str) -> bool:
        return name in COLUMNS or bool(EXTRA_COLUMNS.match(name))

    columns = ", ".join(COLUMNS) + ", diag/..."
    if derived.looks_derived(metric.spec):
        try:
            parsed = metric.derived
        except ValueError:  # a malformed threshold (1..2, 1e)
            parsed = None
        if parsed is None:
            raise ConfigError(key, spec, f"derived metrics are {derived.SYNTAX}")
        missing = [c for c in parsed.columns if not is_column(c)]
        if missing:
            raise ConfigError(key, spec, f"no metrics.csv column {', '.join(missing)}: a run writes {columns}")
        return
    if metric.from_csv:
        if not is_column(metric.name):
            raise ConfigError(key, spec, f"metrics:<column> with a metrics.csv column: {columns}")
        return
    paths = sorted({*SUMMARY_PATHS, *EXTRA_SUMMARY_PATHS})
    if metric.name not in paths:
        raise ConfigError(key, spec, f"a summary.json path ({', '.join(paths)}), metrics:<column> or "
                                     f"a derived metric ({derived.SYNTAX})")
