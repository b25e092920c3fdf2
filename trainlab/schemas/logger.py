"""logger=: experiment trackers beside metrics.csv (the builders are in trainlab.engine.trackers).

metrics.csv is always written; these options add trackers and combine
(`logger=[tensorboard,mlflow]`), so each lives under its own key like regularizer=.
`logger=none` (the default) is a hand-written empty mapping: no tracker, and none of
their packages imported. Every tracker gets what metrics.csv gets, at each evaluation.
"""
from dataclasses import dataclass

from trainlab.errors import check
from trainlab.registry import Registry

LOGGERS = Registry("logger", builders="trainlab.engine.trackers")

# option -> the modules it needs: checked (importlib.util.find_spec, no import) before training.
# mlflow's SQL store (sqlite:///..., postgresql://...) also needs sqlalchemy and alembic.
PACKAGES = {"tensorboard": ("tensorboard",), "mlflow": ("mlflow",), "wandb": ("wandb",)}
SQL_STORE = ("sqlalchemy", "alembic")
FILE_OR_SERVER = ("http://", "https://", "file:", "databricks")


def needed_modules(name: str, schema) -> tuple:
    modules = PACKAGES.get(name, ())
    uri = str(getattr(schema, "tracking_uri", ""))
    if name == "mlflow" and "://" in uri and not uri.startswith(FILE_OR_SERVER):
        modules += SQL_STORE
    return modules
EXTRA = "pip install 'trainlab[trackers]'"
# what trainlab itself writes in a run folder: a tracker's folder must not be (or be inside) one of them
RUN_FOLDER_OWN = (".hydra", "checkpoints", "train.log", "metrics.csv", "step_losses.csv", "summary.json",
                  ".trainlab.lock")


def check_inside_run_folder(key: str, folder: str) -> None:
    """`folder` is relative and stays inside the run folder once normalized (`a/../../x` does not),
    and is none of trainlab's own entries there (`train.log`, `checkpoints/...`)."""
    import posixpath

    text = str(folder).strip()
    norm = posixpath.normpath(text.replace("\\", "/")) if text else ""
    first = norm.split("/", 1)[0]
    ok = bool(text) and not norm.startswith("/") and first != ".." and first not in RUN_FOLDER_OWN
    check(ok, key, folder, "a folder inside the run folder, relative to it (not absolute, no way out with "
                           f"'..', none of trainlab's own {', '.join(RUN_FOLDER_OWN)})")


@LOGGERS.option("tensorboard", "TensorBoard event files in the run folder: scalars per evaluation, the run's "
                               "choices and final metrics for the HParams view, figures as images at the end.")
@dataclass
class TensorBoardSchema:
    """`tensorboard --logdir outputs` then shows every run and every sweep job."""

    dir: str = "tensorboard"   # the event folder, inside the run folder
    figures: bool = True       # add the run's PNG figures as images when it ends

    def __post_init__(self):
        check_inside_run_folder("dir", self.dir)


@LOGGERS.option("mlflow", "MLflow tracking: params = the flattened config, metrics per evaluation with their "
                          "step, summary.json and figures as artifacts; a resumed run continues its MLflow run.")
@dataclass
class MlflowSchema:
    """The default store is an SQLite database; `mlflow ui --backend-store-uri sqlite:///outputs/mlflow.db`."""

    tracking_uri: str = "sqlite:///outputs/mlflow.db"  # any MLflow tracking URI; a relative sqlite path is from the working directory
    experiment: str = ""       # experiment name; empty: the sweep folder's name in a sweep, `trainlab` for a single run
    artifacts: bool = True     # upload summary.json and the figures when the run ends
    checkpoints: bool = False  # also upload checkpoints/*.pt (under `checkpoints/`) when the run ends

    def __post_init__(self):
        check(bool(str(self.tracking_uri).strip()), "tracking_uri", self.tracking_uri, "an MLflow tracking URI")


@LOGGERS.option("wandb", "Weights & Biases, offline by default (files in the run folder; `wandb sync` uploads them "
                         "later): the config, metrics per evaluation with their step, the figures and final metrics.")
@dataclass
class WandbSchema:
    """Online only when asked for: mode=online (after `wandb login`); the config's mode wins over WANDB_MODE."""

    mode: str = "offline"      # offline (written to `dir`, `wandb sync <dir>/wandb/offline-run-*` uploads), online, disabled
    project: str = "trainlab"  # the W&B project
    entity: str = ""           # team or user; empty: the logged-in default (online only)
    group: str = ""            # run group; empty: the sweep folder's name in a sweep, none for a single run
    dir: str = "."             # where wandb writes its `wandb/` folder, relative to the run folder
    figures: bool = True       # log the run's PNG figures as images when it ends
    checkpoints: bool = False  # log checkpoints/*.pt as a `model` artifact when the run ends

    def __post_init__(self):
        check(self.mode in ("offline", "online", "disabled"), "mode", self.mode, "offline, online or disabled")
        check_inside_run_folder("dir", self.dir)
