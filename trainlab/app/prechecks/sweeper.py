"""The sweeper's own options (hydra.sweeper.*) and the launcher's, checked before the sweep folder
exists. Before, Hydra instantiated the sweeper after making the folder, and a mistake there was a
traceback beside a stray folder (or, for n_trials=0 and objective=nosuch.metric, a sweep that ran
and reported nothing)."""
from __future__ import annotations

from omegaconf import OmegaConf

from trainlab.app.prechecks.launcher import check_launcher, check_plugin_keys
from trainlab.app.prechecks.metrics import check_metric
from trainlab.errors import ConfigError

OPTUNA = "OptunaSweeper"
DIRECTIONS = ("maximize", "minimize")


def check_sweep(hydra_cfg, task: list[str]) -> None:
    """Every hydra.sweeper and hydra.launcher setting of this sweep (`task`: the job overrides)."""
    try:
        sweeper = OmegaConf.to_container(hydra_cfg.sweeper, resolve=True)
    except Exception:  # a value interpolating what only a running job knows: checked as written
        sweeper = OmegaConf.to_container(hydra_cfg.sweeper, resolve=False)
    target = str(sweeper.get("_target_", ""))
    if str(hydra_cfg.launcher.get("_target_", "")).endswith("VectorizedLauncher"):
        from trainlab.app.vectorize_groups import check_sweeper

        check_sweeper(target)  # which sweepers it can serve at all comes before their options
    check_plugin_keys("hydra.sweeper", sweeper)
    batch = sweeper.get("max_batch_size")
    if batch is not None and not _integer_at_least(batch, 1):
        raise ConfigError("hydra.sweeper.max_batch_size", batch, "null (every job in one launch) or an integer >= 1")
    table = sweeper.get("table") or {}
    for metric in (table.get("metrics") or []) if isinstance(table, dict) else []:
        check_metric("hydra.sweeper.table.metrics", metric)
    if target.endswith(OPTUNA):
        _check_optuna(sweeper, hydra_cfg, task)
    elif "n_trials" in sweeper:  # trainlab's grid / random search (trainlab.sweep.search checks n_trials, seed)
        if not isinstance(sweeper.get("resume", False), bool):
            raise ConfigError("hydra.sweeper.resume", sweeper["resume"], "true or false")
    check_launcher(hydra_cfg)


def _check_optuna(sweeper: dict, hydra_cfg, task: list[str]) -> None:
    from importlib.util import find_spec

    from trainlab.app.prechecks.search_space import check_search_space
    from trainlab.sweep.optuna_search import PRUNERS, SAMPLERS

    if find_spec("optuna") is None:
        raise ConfigError("hydra/sweeper", "optuna", "an installed optuna (pip install 'trainlab[search]')")

    def need(ok: bool, key: str, valid: str) -> None:
        if not ok:
            raise ConfigError(f"hydra.sweeper.{key}", sweeper.get(key), valid)

    need(_integer_at_least(sweeper.get("n_trials"), 1), "n_trials", "an integer >= 1: the trials in the study")
    need(_integer_at_least(sweeper.get("parallel_trials", 1), 1), "parallel_trials",
         "an integer >= 1: trials asked at once")
    need(_integer_at_least(sweeper.get("seed", 0), 0), "seed", "an integer >= 0: the sampler's seed")
    need(sweeper.get("sampler") in SAMPLERS, "sampler", "one of " + ", ".join(SAMPLERS))
    need(sweeper.get("pruner") in PRUNERS, "pruner", "one of " + ", ".join(PRUNERS))
    need(_integer_at_least(sweeper.get("pruner_warmup", 1), 0), "pruner_warmup",
         "an integer >= 0: evaluations before a trial may be pruned")
    need(sweeper.get("direction") in (None, *DIRECTIONS), "direction",
         "null (from the objective: accuracies up, everything else down) or " + " or ".join(DIRECTIONS))
    name = sweeper.get("study_name")
    need(name is None or (isinstance(name, str) and name.strip() != ""), "study_name",
         "null (the sweep folder's name) or a non-empty name")
    need(isinstance(sweeper.get("resume", False), bool), "resume", "true or false")
    need(isinstance(sweeper.get("objective"), str), "objective", "a metric name, e.g. best.val_acc")
    check_metric("hydra.sweeper.objective", sweeper["objective"])
    storage = sweeper.get("storage")
    if storage is not None:
        from trainlab.app.prechecks.urls import check_database_url

        need(isinstance(storage, str) and storage.strip() != "", "storage",
             "null (sqlite:///<sweep folder>/optuna.db), a database URL, or journal:PATH")
        if storage.startswith("journal:"):  # Optuna's journal file, shared by workers (trainlab.sweep.shared_study)
            _check_journal(storage)
        else:
            check_database_url("hydra.sweeper.storage", storage, creates_folder=False)
    check_search_space(sweeper.get("params") or {}, task)


def _check_journal(storage: str) -> None:
    """journal:PATH: a file whose folder exists (the workers create the file, not the folder)."""
    from pathlib import Path

    from trainlab.sweep.shared_study import normalized

    path = Path(normalized(storage)[len("journal:"):])
    if not path.parent.is_dir():
        raise ConfigError("hydra.sweeper.storage", storage, f"journal:PATH in an existing folder ({path.parent} "
                          "does not exist)")
    if path.is_dir():
        raise ConfigError("hydra.sweeper.storage", storage, "journal:PATH naming a file, not a folder")


def _integer_at_least(value, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least

