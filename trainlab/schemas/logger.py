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
PACKAGES = {"tensorboard": ("tensorboard",), "mlflow": ("mlflow",)}
SQL_STORE = ("sqlalchemy", "alembic")
FILE_OR_SERVER = ("http://", "https://", "file:", "databricks")


def needed_modules(name: str, schema) -> tuple:
    modules = PACKAGES.get(name, ())
    uri = str(getattr(schema, "tracking_uri", ""))
    if name == "mlflow" and "://" in uri and not uri.startswith(FILE_OR_SERVER):
        modules += SQL_STORE
    return modules
EXTRA = "pip install 'trainlab[trackers]'"


@LOGGERS.option("tensorboard", "TensorBoard event files in the run folder: scalars per evaluation, the run's "
                               "choices and final metrics for the HParams view, figures as images at the end.")
@dataclass
class TensorBoardSchema:
    """`tensorboard --logdir outputs` then shows every run and every sweep job."""

    dir: str = "tensorboard"   # the event folder, inside the run folder
    figures: bool = True       # add the run's PNG figures as images when it ends


@LOGGERS.option("mlflow", "MLflow tracking: params = the flattened config, metrics per evaluation with their "
                          "step, summary.json and figures as artifacts; a resumed run continues its MLflow run.")
@dataclass
class MlflowSchema:
    """The default store is an SQLite database; `mlflow ui --backend-store-uri sqlite:///outputs/mlflow.db`."""

    tracking_uri: str = "sqlite:///outputs/mlflow.db"  # any MLflow tracking URI; a relative sqlite path is from the working directory
    experiment: str = ""       # experiment name; empty: the sweep folder's name in a sweep, `trainlab` for a single run
    artifacts: bool = True     # upload summary.json and the figures when the run ends

    def __post_init__(self):
        check(bool(str(self.tracking_uri).strip()), "tracking_uri", self.tracking_uri, "an MLflow tracking URI")
