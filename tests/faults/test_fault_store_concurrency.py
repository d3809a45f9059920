"""Fault: several processes open a fresh embedded store and start stage runs at once.

Without a lock they collided creating MLflow's tables ("duplicate column name: step"), hit
"database is locked", and made one group parent run each. Now set-up (of the MLflow store and of
the Optuna SQLite storage) and find-or-create of the parent run happen under file locks: every
process gets its run, under exactly one parent.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import optuna
import yaml
from mlflow.tracking import MlflowClient

from pml_ops.run_group import GROUP_TAG, ROLE_TAG
from tests.faults.conftest import fault_params

PROCESSES = 4


def _open_stores_and_start_a_stage_run(params_file: str, index: int, barrier) -> None:
    import os

    import mlflow

    from pml_ops.config import load_params
    from pml_ops.run_group import stage_run
    from pml_ops.tuning.storage import open_storage, resolve_storage

    os.environ["PML_OPS_RUN_GROUP"] = "concurrent"
    params = load_params(params_file)
    barrier.wait()
    storage = open_storage(resolve_storage(params.tuning.storage))
    optuna.create_study(study_name="concurrent", storage=storage, load_if_exists=True)
    with stage_run(params, f"stage {index}", {"stage": f"stage_{index}"}):
        mlflow.log_metric("index", index)


def test_processes_opening_fresh_stores_at_once_all_start_runs_under_one_parent(tmp_path: Path):
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
    parents = [r for r in runs if r.data.tags.get(ROLE_TAG) == "group"]
    assert len(parents) == 1 and parents[0].data.tags[GROUP_TAG] == "concurrent"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert sorted(int(r.data.metrics["index"]) for r in children) == list(range(PROCESSES))
    assert {r.info.status for r in children} == {"FINISHED"}
    assert optuna.load_study(study_name="concurrent", storage=params["tuning"]["storage"]).trials == []
