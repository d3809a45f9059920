"""Optuna storage URLs: an embedded SQLite file by default, any RDB URL (PostgreSQL, MySQL) to
share one study between workers on several machines."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

import optuna
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from pml_ops.errors import ConfigError, TuningError
from pml_ops.tracking import resolve_uri

SQLITE_LOCK_TIMEOUT_S = 60  # workers on one SQLite file wait this long for its write lock
OPEN_ATTEMPTS = 5  # workers starting at once on an empty database race to create its tables


def resolve_storage(url: str, project_dir: Path | None = None) -> str:
    """Anchor a relative `sqlite:///file` in the project directory; check the URL parses.

    A bare `postgresql://` URL gets the installed driver: SQLAlchemy 2.1 defaults to psycopg 3,
    the project ships psycopg2.
    """
    resolved = resolve_uri(url, Path.cwd() if project_dir is None else project_dir)
    try:
        parsed = make_url(resolved)
    except ArgumentError:
        raise ConfigError(f"tuning.storage: not a database URL: {url!r}") from None
    if parsed.drivername == "postgresql" and importlib.util.find_spec("psycopg") is None:
        return parsed.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
    return resolved


def redact(url: str) -> str:
    """The URL without its password, for logs, reports and MLflow tags."""
    return make_url(url).render_as_string(hide_password=True)


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """Open (creating its tables if needed) the RDB storage at an already-resolved `url`."""
    engine_kwargs: dict[str, Any]
    if url.startswith("sqlite:"):
        engine_kwargs = {"connect_args": {"timeout": SQLITE_LOCK_TIMEOUT_S}}
    else:
        engine_kwargs = {"pool_pre_ping": True}
    for attempt in range(1, OPEN_ATTEMPTS + 1):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
        except SQLAlchemyError as error:
            if attempt == OPEN_ATTEMPTS:
                raise TuningError(f"cannot open Optuna storage {redact(url)}: {error}") from None
            time.sleep(0.5 * attempt)
    raise AssertionError("unreachable")
