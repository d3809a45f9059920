"""Optuna storage URLs: an embedded SQLite file by default, PostgreSQL to share one study between
workers on several machines."""

from __future__ import annotations

import importlib.util
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from pml_ops.config import HeartbeatParams
from pml_ops.core.errors import ConfigError, TuningError
from pml_ops.tracking.store import holding, resolve_uri, store_lock
from pml_ops.tuning.task import StaleTrialCallback

SQLITE_LOCK_TIMEOUT_S = 60  # workers on one SQLite file wait this long for its write lock
OPEN_ATTEMPTS = 5  # workers starting at once on an empty database race to create its tables
SUPPORTED_BACKENDS = ("sqlite", "postgresql")


def resolve_storage(url: str, project_dir: Path | None = None) -> str:
    """Anchor a relative `sqlite:///file` in the project directory; check the URL parses and
    names a database the project has a driver for (SQLite or PostgreSQL).

    A bare `postgresql://` URL gets the installed driver: SQLAlchemy 2.1 defaults to psycopg 3,
    the project ships psycopg2.
    """
    resolved = resolve_uri(url, Path.cwd() if project_dir is None else project_dir)
    try:
        parsed = make_url(resolved)
    except ArgumentError:
        raise ConfigError(f"tuning.storage: not a database URL: {url!r}") from None
    if parsed.get_backend_name() not in SUPPORTED_BACKENDS:
        raise ConfigError(
            f"tuning.storage: {parsed.get_backend_name()!r} databases are not supported "
            f"(got {redact(resolved)}): use sqlite:///FILE (one machine) or "
            "postgresql://USER@HOST/DB (several machines); the project installs no driver for others"
        )
    if parsed.drivername == "postgresql" and importlib.util.find_spec("psycopg") is None:
        return parsed.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
    return resolved


def redact(url: str) -> str:
    """The URL without its password, for logs, reports and MLflow tags."""
    return make_url(url).render_as_string(hide_password=True)


def open_storage(
    url: str, heartbeat: HeartbeatParams | None = None, mlflow_uri: str | None = None
) -> optuna.storages.RDBStorage:
    """Open (creating its tables if needed) the RDB storage at an already-resolved `url`.

    Set-up runs under a file lock (processes creating a fresh database's tables at once collide)
    and is retried a few times. With `heartbeat`, every running trial records a heartbeat; a
    trial without one for the grace period is failed by the next worker that starts a trial, its
    MLflow run (in the store at `mlflow_uri`) is ended KILLED and it is queued to run again.
    Heartbeats work on every RDB storage, SQLite included.
    """
    engine_kwargs: dict[str, Any]
    if url.startswith("sqlite:"):
        engine_kwargs = {"connect_args": {"timeout": SQLITE_LOCK_TIMEOUT_S}}
    else:
        engine_kwargs = {"pool_pre_ping": True}
    beats: dict[str, Any] = {}
    if heartbeat is not None:
        beats = {
            "heartbeat_interval": heartbeat.interval_s,
            "grace_period": heartbeat.grace_period_s,
            "heartbeat_stale_trial_callback": StaleTrialCallback(heartbeat.max_retry, mlflow_uri),
        }
    with holding(store_lock(url), f"opening Optuna storage {redact(url)}"):
        for attempt in range(1, OPEN_ATTEMPTS + 1):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **beats)
            except SQLAlchemyError as error:
                if attempt == OPEN_ATTEMPTS:
                    raise TuningError(f"cannot open Optuna storage {redact(url)}: {error}") from None
                time.sleep(0.5 * attempt)
    raise AssertionError("unreachable")
