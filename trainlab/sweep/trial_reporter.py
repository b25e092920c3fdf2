"""A sweep job's side of Optuna pruning: its trial, found from the sweep folder's trial file
(trainlab.sweep.optuna_search), gets each evaluation's value and may stop the job."""
from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

from trainlab.sweep.optuna_search import TRIALS_FILE, make_pruner


class TrialReporter:
    """A sweep job's side of pruning. The trial's lead replicate reports the validation metric at
    each evaluation and says when the pruner stops it (and marks the trial pruned); another
    replicate stops once the lead was pruned (see the module's docstring)."""

    def __init__(self, entry: dict, column: str):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        from trainlab.sweep.shared_study import open_storage

        self.storage = open_storage(entry["storage"])  # an RDB URL, or journal:PATH (shared by workers)
        # the sweep's pruner: a study's pruner is not kept in its storage (load_study's default is median)
        pruner = make_pruner(*entry["pruner"]) if "pruner" in entry else None
        study = optuna.load_study(study_name=entry["study"], storage=self.storage, pruner=pruner)
        self.trial_id, self.lead = entry["trial_id"], entry.get("lead", True)
        self.trial = optuna.trial.Trial(study, self.trial_id)
        self.column = column

    def lead_pruned(self) -> bool:
        return "pruned_at_epoch" in self.storage.get_trial_user_attrs(self.trial_id)

    def prune(self, row: dict) -> bool:
        if not self.lead:
            return self.lead_pruned()
        value = row.get(self.column)
        if value is None or not math.isfinite(value):
            return False
        with warnings.catch_warnings():  # a resumed job reports its earlier epochs again: Optuna ignores them
            warnings.simplefilter("ignore")
            self.trial.report(float(value), int(row["epoch"]))
        if not self.trial.should_prune():
            return False
        self.trial.set_user_attr("pruned_at_epoch", int(row["epoch"]))
        return True


def trial_reporter(monitor: str) -> TrialReporter | None:
    """The reporter of this sweep job when an optuna sweep prunes it; None otherwise (no import)."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
            return None
        hc = HydraConfig.get()
        path, job = Path(hc.sweep.dir) / TRIALS_FILE, str(hc.job.num)
    except Exception:
        return None
    if not path.is_file():
        return None
    entry = json.loads(path.read_text()).get(job)
    if not entry or not entry.get("prune"):
        return None
    return TrialReporter(entry, entry.get("column") or monitor)
