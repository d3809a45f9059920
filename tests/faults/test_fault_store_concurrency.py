"""Fault: several processes open a fresh embedded store and start stage runs at once.

Without a lock they collided creating MLflow's tables ("duplicate column name: step"), hit
"database is locked", and made one group parent run each. Now set-up (of the MLflow store and of
the Optuna SQLite storage) happens under file locks and runs are flat (one `pipeline` tag, no
parent run to find or create): every process gets its run, all tagged with the one pipeline.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import optuna
import yaml
from mlflow.tracking import MlflowClient

from pml_ops.tracking.run_group import PIPELINE_TAG
from tests.helpers.faults.fault_params import fault_params

PROCESSES = 4


def _open_stores_and_start_a_stage_run(params_file: str, index: int, barrier) -> None:
    import os

    import mlflow

    from pml_ops.config import load_params
    from pml_ops.tracking.run_group import tracked_stage
    from pml_ops.tuning.storage import open_storage, resolve_storage

    os.environ["PML_OPS_RUN_GROUP"] = "concurrent"
    params = load_params(params_file)
    barrier.wait()
    storage = open_storage(resolve_storage(params.tuning.storage))
    optuna.create_study(study_name="concurrent", storage=storage, load_if_exists=True)
    with tracked_stage(params, f"stage {index}", {"stage": f"stage_{index}"}):
        mlflow.log_metric("index", index)


def test_processes_opening_fresh_stores_at_once_all_start_runs_of_one_pipeline(tmp_path: Path, monkeypatch):
    # mlflow.set_tracking_uri (any earlier in-process test) exports MLFLOW_TRACKING_URI, which the
    # children would inherit and log to instead of this test's store
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    params_file = fault_params(tmp_path, f"sqlite:///{tmp_path}/optuna.db")
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    processes = [
        context.Process(target=_open_stores_and_start_a_stage_run, args=(str(params_file), index, barrier))
        for index in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=240)
    assert [process.exitcode for process in processes] == [0] * PROCESSES

    params = yaml.safe_load(params_file.read_text())
    client = MlflowClient(params["tracking"]["uri"])
    experiment = client.get_experiment_by_name(params["tracking"]["experiment"])
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    assert {r.data.tags[PIPELINE_TAG] for r in runs} == {"concurrent"}
    assert not any("mlflow.parentRunId" in r.data.tags for r in runs)  # flat: no parent to race for
    assert sorted(int(r.data.metrics["index"]) for r in runs) == list(range(PROCESSES))
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert optuna.load_study(study_name="concurrent", storage=params["tuning"]["storage"]).trials == []
