"""What a logger will connect to, checked once before any folder: MLflow's tracking URI by MLflow's
own store registry (then the SQL store's driver, or the server with one connect of at most
urls.CONNECT_TIMEOUT_S, where MLflow itself retries for minutes), W&B's project by wandb's own
settings and, online, its key. The folders they write are the schemas' (trainlab.schemas.logger)."""
from __future__ import annotations

import os
from urllib.parse import urlsplit

from trainlab.errors import ConfigError

MLFLOW_URIS = ("sqlite:///path/to/mlflow.db, postgresql://... or mysql://... (a database), "
               "http(s)://host:port (a tracking server) or databricks")


def check_mlflow(schema) -> None:
    key, uri = "logger.mlflow.tracking_uri", str(schema.tracking_uri).strip()
    from mlflow.environment_variables import MLFLOW_ALLOW_FILE_STORE
    from mlflow.tracking._tracking_service.utils import _tracking_store_registry

    try:
        builder = _tracking_store_registry.get_store_builder(uri)
    except Exception:
        raise ConfigError(key, uri, f"an MLflow tracking URI: {MLFLOW_URIS}") from None
    if "file_store" in getattr(builder, "__name__", "") and not MLFLOW_ALLOW_FILE_STORE.get():
        raise ConfigError(key, uri, f"an MLflow tracking URI: {MLFLOW_URIS} (a folder path is MLflow's file "
                                    "store, refused by MLflow unless MLFLOW_ALLOW_FILE_STORE=true)")
    if "sqlalchemy" in getattr(builder, "__name__", ""):
        from trainlab.app.prechecks.urls import check_database_url

        check_database_url(key, uri, creates_folder=True)  # the tracker makes a sqlite file's folder
    elif uri.startswith(("http://", "https://")):
        from trainlab.app.prechecks.urls import check_reachable

        parts = urlsplit(uri)
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            port = None
        if not parts.hostname or port is None:
            raise ConfigError(key, uri, "a tracking server's address, http(s)://host[:port]")
        check_reachable(key, uri, parts.hostname, port)
        _check_mlflow_answers(key, uri)


def _check_mlflow_answers(key: str, uri: str) -> None:
    """One request to the server's REST API (at most CONNECT_TIMEOUT_S): an MLflow server answers it,
    with the experiment or with MLflow's JSON error; a port that is something else (a proxy, another
    web server) answers a bare 404 or HTML, and MLflow would fail every run against it later."""
    import json
    import urllib.error
    import urllib.request

    from trainlab.app.prechecks.urls import CONNECT_TIMEOUT_S

    url = uri.rstrip("/") + "/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default"
    try:
        with urllib.request.urlopen(url, timeout=CONNECT_TIMEOUT_S):
            return
    except urllib.error.HTTPError as err:
        if err.code in (401, 403):  # a server behind authentication: MLflow's credentials are its own business
            return
        try:
            if "error_code" in json.loads(err.read(65536) or b"{}"):
                return  # MLflow's own error (RESOURCE_DOES_NOT_EXIST): an MLflow server
        except ValueError:
            pass
        why = f"HTTP {err.code} from its REST API ({url.split('?')[0]})"
    except (urllib.error.URLError, OSError) as err:
        why = f"no answer to a request within {CONNECT_TIMEOUT_S:g} s ({getattr(err, 'reason', err)})"
    raise ConfigError(key, uri, f"the address of an MLflow tracking server (`mlflow server`): {why}")


def check_wandb(schema) -> None:
    import wandb

    try:
        wandb.Settings(project=schema.project or None)
    except Exception as err:  # wandb's own rules for a project name
        raise ConfigError("logger.wandb.project", schema.project, str(err).splitlines()[0]) from None
    if schema.mode == "online" and not _wandb_key():
        raise ConfigError("logger.wandb.mode", schema.mode, "offline (the default) or disabled, or online once "
                          "W&B has a key: `wandb login`, or WANDB_API_KEY")


def _wandb_key() -> bool:
    """Whether wandb will find credentials where it looks without asking: its environment variables,
    then the .netrc entry `wandb login` writes for the server (WANDB_BASE_URL, else api.wandb.ai)."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    import wandb
    from wandb.sdk.lib.wbauth import read_netrc_auth

    try:
        return bool(read_netrc_auth(host=wandb.Settings().base_url))
    except Exception:  # an unreadable .netrc: wandb would ask, which a job cannot answer
        return False


CHECKS = {"mlflow": check_mlflow, "wandb": check_wandb}
