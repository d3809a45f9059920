"""Fixtures for the fault tests: a fresh PostgreSQL database, tuning params on a temporary store."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT

PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def postgres_url():
    """A fresh PostgreSQL database on the local server, dropped afterwards."""
    import sqlalchemy

    name = f"pml_ops_fault_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    except sqlalchemy.exc.OperationalError as error:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL not reachable at {PG_ADMIN}: {error}")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN}")
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def fault_params(tmp_path: Path, storage: str, **tuning_changes) -> Path:
    """params.yaml with every store in `tmp_path` and fast heartbeats; returns its path."""
    raw = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    raw["tracking"].update(uri=f"sqlite:///{tmp_path}/mlflow.db", artifact_root=str(tmp_path / "mlartifacts"))
    raw["density"]["checkpoint_dir"] = str(tmp_path / "checkpoints")
    tuning = raw["tuning"]
    tuning.update(
        storage=storage,
        output_dir=str(tmp_path / "tuning"),
        best_params_file=str(tmp_path / "params_tuned.yaml"),
        heartbeat={"interval_s": 1, "grace_period_s": 3, "max_retry": 2, "worker_restarts": 2},
        **tuning_changes,
    )
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path
