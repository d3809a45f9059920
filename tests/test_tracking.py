from __future__ import annotations

from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from pml_ops.config import TrackingParams
from pml_ops.tracking import configure, dvc_output_md5, resolve_uri, tracking_uri

PARAMS = TrackingParams(uri="sqlite:///mlflow.db", experiment="unit", artifact_root="mlartifacts")


def test_relative_sqlite_uri_is_anchored_in_the_project(tmp_path: Path):
    assert resolve_uri("sqlite:///mlflow.db", tmp_path) == f"sqlite:///{tmp_path}/mlflow.db"
    assert resolve_uri("sqlite:////abs/x.db", tmp_path) == "sqlite:////abs/x.db"
    assert resolve_uri("http://127.0.0.1:5000", tmp_path) == "http://127.0.0.1:5000"


def test_environment_overrides_params(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    assert tracking_uri(PARAMS, tmp_path) == "http://127.0.0.1:9"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert tracking_uri(PARAMS, tmp_path) == f"sqlite:///{tmp_path}/mlflow.db"


def test_runs_land_in_the_project_store(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    experiment_id = configure(PARAMS, tmp_path)
    with mlflow.start_run() as run:
        mlflow.log_metric("x", 1.5)
        mlflow.log_text("hello", "note.txt")
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    assert client.get_run(run.info.run_id).data.metrics == {"x": 1.5}
    assert client.get_experiment(experiment_id).artifact_location == (tmp_path / "mlartifacts").as_uri()
    assert (tmp_path / "mlartifacts" / run.info.run_id / "artifacts" / "note.txt").read_text() == "hello"
    assert configure(PARAMS, tmp_path) == experiment_id  # idempotent


def test_dvc_output_md5_reads_the_lock_file(tmp_path: Path):
    assert dvc_output_md5("data/mnist.npz", tmp_path) == "unknown"
    (tmp_path / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  prepare:\n    outs:\n    - path: data/mnist.npz\n      md5: abc\n"
    )
    assert dvc_output_md5("data/mnist.npz", tmp_path) == "abc"
