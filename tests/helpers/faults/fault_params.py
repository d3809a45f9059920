"""Helpers for the fault tests: tuning params on a temporary store (the PostgreSQL database is
tests/conftest.py's `postgres_url`)."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.conftest import REPO_ROOT


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
