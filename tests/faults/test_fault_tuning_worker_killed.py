"""Fault: one tuning worker killed (kill -9) mid-trial, and a worker elsewhere that goes silent.

The command goes on: the killed worker's trial is failed with the reason, its MLflow run ended
KILLED, its params queued again (Optuna's retry callback) and a replacement worker runs the rest
of its share, so the study still ends with exactly N complete trials.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient

from pml_ops.config import parse_params
from pml_ops.core.errors import TuningError
from pml_ops.tuning.command import Overrides, tune
from pml_ops.tuning.storage import open_storage, resolve_storage
from pml_ops.tuning.task import EPOCHS_DONE, MLFLOW_RUN, NO_HEARTBEAT, WORKER
from tests.conftest import REPO_ROOT
from tests.helpers.faults.fault_helpers import DyingTask, SlowTask
from tests.helpers.faults.fault_params import fault_params

TrialState = optuna.trial.TrialState
TRIALS = 4


def _running_trial_with_progress(
    study_name: str, storage: optuna.storages.BaseStorage
) -> optuna.trial.FrozenTrial | None:
    study = optuna.load_study(study_name=study_name, storage=storage)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if WORKER in trial.user_attrs and EPOCHS_DONE in trial.user_attrs:
            return trial
    return None


def test_kill_9_of_one_worker_mid_trial_still_gives_exactly_n_complete_trials(tmp_path, postgres_url):
    params_file = fault_params(tmp_path, postgres_url, trials=TRIALS, workers=2)
    params = parse_params(yaml.safe_load(params_file.read_text()))
    # One storage (one connection pool) for every poll: a new one per poll leaked connections
    # until PostgreSQL refused clients ("too many clients already") on a loaded machine.
    storage = optuna.storages.RDBStorage(resolve_storage(postgres_url))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PML_OPS_PROGRESS": "0"}
    env.pop("MLFLOW_TRACKING_URI", None)
    command = [
        sys.executable,
        "-m",
        "tests.helpers.faults.fault_helpers",
        "tune",
        str(params_file),
        str(tmp_path),
    ]
    tune_process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        victim = None
        deadline = time.monotonic() + 120
        while victim is None and time.monotonic() < deadline and tune_process.poll() is None:
            time.sleep(0.2)
            try:
                victim = _running_trial_with_progress(params.tuning.cvae.study_name, storage)
            except KeyError:  # the study is not created yet
                continue
        assert victim is not None, "no trial got under way"
        os.kill(int(victim.user_attrs[WORKER].rsplit(":", 1)[1]), signal.SIGKILL)
        _, err = tune_process.communicate(timeout=180)
    finally:
        if tune_process.poll() is None:
            tune_process.kill()
    assert tune_process.returncode == 0, err
    assert "Traceback" not in err
    assert "BrokenProcessPool" not in err
    assert f"its trial(s) [{victim.number}] failed and queued to run again" in err

    study = optuna.load_study(study_name=params.tuning.cvae.study_name, storage=storage)
    states = [trial.state for trial in study.trials]
    assert states.count(TrialState.COMPLETE) == TRIALS
    assert states.count(TrialState.FAIL) == 1 and len(states) == TRIALS + 1
    killed = study.trials[victim.number]
    assert killed.state == TrialState.FAIL
    assert "killed by SIGKILL" in killed.user_attrs["fail_reason"]
    retries = [t for t in study.trials if t.system_attrs.get("failed_trial") == victim.number]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params == killed.params

    client = MlflowClient(params.tracking.uri)
    run = client.get_run(killed.user_attrs[MLFLOW_RUN])
    assert run.info.status == "KILLED"
    assert "killed by SIGKILL" in run.data.tags["optuna.fail_reason"]
    finished = [
        client.get_run(t.user_attrs[MLFLOW_RUN]).info.status
        for t in study.trials
        if t.number != killed.number
    ]
    assert finished == ["FINISHED"] * TRIALS


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_silent_worker_trial_is_failed_by_heartbeat_and_retried_on_sqlite(tmp_path, monkeypatch):
    """A trial whose worker (say on a lost machine) stopped sending heartbeats is failed by the
    next worker of the study after the grace period, its MLflow run ended KILLED, and rerun.
    Heartbeats work on SQLite as on any RDB storage."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    storage_url = f"sqlite:///{tmp_path}/optuna.db"
    params = parse_params(
        yaml.safe_load(fault_params(tmp_path, storage_url, trials=2, workers=1).read_text())
    )
    heartbeat = params.tuning.heartbeat

    # The lost worker: its trial started, recorded a heartbeat and an MLflow run, then went silent.
    from pml_ops.tracking.store import configure

    experiment_id = configure(params.tracking, tmp_path)
    client = MlflowClient(params.tracking.uri)
    lost_run = client.create_run(experiment_id, run_name="lost trial").info.run_id
    storage = open_storage(storage_url, heartbeat, params.tracking.uri)
    study = optuna.create_study(
        study_name=params.tuning.cvae.study_name, storage=storage, directions=["maximize", "minimize"]
    )
    lost = study.ask({"lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)})
    lost.set_user_attr(MLFLOW_RUN, lost_run)
    lost.set_user_attr(WORKER, "lost-host:1")
    storage.record_heartbeat(lost._trial_id)
    time.sleep(heartbeat.grace_period_s + 1)

    summary = tune(params, SlowTask(epochs=1, seconds_per_epoch=0.0), Overrides(), project_dir=tmp_path)

    trials = optuna.load_study(study_name=study.study_name, storage=storage_url).trials
    assert trials[0].state == TrialState.FAIL
    assert [t.state for t in trials[1:]] == [TrialState.COMPLETE] * 2
    assert trials[1].system_attrs["failed_trial"] == 0 and trials[1].params == trials[0].params
    assert summary["failed"] == [{"number": 0, "reason": NO_HEARTBEAT, "retried_as": 1}]
    run = client.get_run(lost_run)
    assert run.info.status == "KILLED" and run.data.tags["optuna.fail_reason"] == NO_HEARTBEAT


def test_worker_that_keeps_dying_stops_the_study_with_a_message(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    storage_url = f"sqlite:///{tmp_path}/optuna.db"
    params = parse_params(
        yaml.safe_load(fault_params(tmp_path, storage_url, trials=2, workers=2).read_text())
    )
    params = params.model_copy(
        update={
            "tuning": params.tuning.model_copy(
                update={"heartbeat": params.tuning.heartbeat.model_copy(update={"worker_restarts": 1})}
            )
        }
    )
    with pytest.raises(
        TuningError,
        match=r"killed by SIGKILL.*it died 2 times, more than tuning\.heartbeat\.worker_restarts=1",
    ):
        tune(params, DyingTask(), Overrides(), project_dir=tmp_path)
    study = optuna.load_study(study_name=params.tuning.cvae.study_name, storage=storage_url)
    assert not study.get_trials(states=(TrialState.RUNNING,))
    client = MlflowClient(params.tracking.uri)
    study_run = client.get_run(study.user_attrs["mlflow_run_id"])
    assert study_run.info.status == "FAILED"
    trial_runs = client.search_runs([study_run.info.experiment_id], "tags.`optuna.trial` != ''")
    assert trial_runs and {run.info.status for run in trial_runs} == {"KILLED"}
