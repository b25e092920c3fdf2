"""Database URLs and servers, judged by the libraries that will open them (SQLAlchemy's URL parser,
dialect registry and driver import), and servers by one TCP connect with a short timeout: MLflow's
and Optuna's own clients retry an unreachable server for minutes before they say anything."""
from __future__ import annotations

import socket
from pathlib import Path

from trainlab.errors import ConfigError

CONNECT_TIMEOUT_S = 5.0  # one connect attempt; a reachable server answers in milliseconds
URL_FORMS = "dialect[+driver]://user:password@host[:port]/database, or sqlite:///path/to/file.db"


def check_database_url(key: str, url: str, creates_folder: bool) -> None:
    """An SQLAlchemy URL whose dialect and driver are installed; a sqlite file whose folder exists
    (or that the opener creates, `creates_folder`); a server that accepts a connection."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as err:
        raise ConfigError(key, url, f"a database URL: {URL_FORMS} ({str(err).splitlines()[0]})") from None
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        raise ConfigError(key, url, f"a database URL of an installed SQLAlchemy dialect (sqlite, postgresql, "
                                    f"mysql, mssql, oracle): {URL_FORMS}") from None
    try:
        dialect.import_dbapi()
    except ImportError as err:
        module = err.name or parsed.drivername
        raise ConfigError(key, url, f"a URL whose driver is installed ({parsed.drivername} needs the module {module}: "
                                    f"pip install {DRIVER_PACKAGES.get(module, module)}, or name another driver "
                                    f"as {parsed.get_backend_name()}+<driver>://...)") from None
    if parsed.get_backend_name() == "sqlite":
        _check_sqlite_file(key, url, parsed.database, creates_folder)
    elif parsed.host:
        check_reachable(key, url, parsed.host, parsed.port or DEFAULT_PORTS.get(parsed.get_backend_name()))


DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306, "mssql": 1433, "oracle": 1521}
DRIVER_PACKAGES = {"psycopg": "'psycopg[binary]'", "psycopg2": "psycopg2-binary", "MySQLdb": "mysqlclient"}


def _check_sqlite_file(key: str, url: str, database: str | None, creates_folder: bool) -> None:
    if not database or database == ":memory:":
        raise ConfigError(key, url, "an SQLite file, sqlite:///path/to/file.db (an in-memory database is "
                                    "not shared with the jobs that open it by URL)")
    path = Path(database).expanduser().absolute()
    if path.is_dir():
        raise ConfigError(key, url, f"an SQLite file ({path} is a folder)")
    folder = path.parent
    if not creates_folder and not folder.is_dir():
        raise ConfigError(key, url, f"an SQLite file in an existing folder ({folder} does not exist)")
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is None or not existing.is_dir():
        raise ConfigError(key, url, f"an SQLite file in a folder ({existing} is a file)")
    import os

    if not os.access(existing, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(key, url, f"an SQLite file this user can write ({existing if not path.exists() else path} "
                                    "is not writable)")


def check_reachable(key: str, value: str, host: str, port: int | None) -> None:
    """One TCP connect to host:port within CONNECT_TIMEOUT_S, or a ConfigError saying why not."""
    if port is None:
        return
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            return
    except socket.gaierror as err:
        why = f"the host name {host} does not resolve ({err.strerror})"
    except TimeoutError:
        why = f"no answer from {host}:{port} within {CONNECT_TIMEOUT_S:g} s"
    except OSError as err:
        why = f"{host}:{port} refused the connection ({err.strerror or type(err).__name__})"
    raise ConfigError(key, value, f"a server that is reachable from here: {why}")
