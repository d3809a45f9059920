"""Fault: Ctrl-C on `pml-ops tune` with two workers (SIGINT reaches the whole process group, as
from a terminal). One line, no traceback from the command or its workers; the running trials
are failed as stopped, their MLflow runs and the study's run end KILLED; exit status 130.

The command line is the real one; its trials are `SlowTask`'s (no torch), which stop alike."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import optuna
import yaml
from mlflow.tracking import MlflowClient

from pml_ops.tuning.task import EPOCHS_DONE
from tests.conftest import REPO_ROOT
from tests.helpers.faults.fault_params import fault_params

TrialState = optuna.trial.TrialState


def test_ctrl_c_on_tune_prints_one_line_and_ends_every_run_killed(tmp_path):
    storage = f"sqlite:///{tmp_path}/optuna.db"
    params_file = fault_params(tmp_path, storage, trials=4, workers=2)
    raw = yaml.safe_load(params_file.read_text())
    env = {**os.environ, "PML_OPS_PROGRESS": "0", "PYTHONPATH": str(REPO_ROOT)}
    env.pop("MLFLOW_TRACKING_URI", None)
    command = [
        sys.executable,
        "-m",
        "tests.helpers.faults.fault_helpers",
        "cli",
        "--params",
        str(params_file),
    ]
    tune = subprocess.Popen(
        [*command, "tune", "--model", "cvae"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    study_name = raw["tuning"]["cvae"]["study_name"]
    try:
        deadline = time.monotonic() + 150
        running: list[optuna.trial.FrozenTrial] = []
        while len(running) < 2 and time.monotonic() < deadline and tune.poll() is None:
            time.sleep(0.3)
            try:
                study = optuna.load_study(study_name=study_name, storage=storage)
            except KeyError:
                continue
            running = [
                t for t in study.get_trials(states=(TrialState.RUNNING,)) if EPOCHS_DONE in t.user_attrs
            ]
        assert len(running) == 2, "both workers should be mid-trial"
        os.killpg(tune.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        _, err = tune.communicate(timeout=90)
    finally:
        if tune.poll() is None:
            os.killpg(tune.pid, signal.SIGKILL)
    assert tune.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    lines = [line for line in err.splitlines() if line.startswith("pml-ops:")]
    assert len(lines) == 1 and lines[0] == err.strip().splitlines()[-1]
    assert lines[0].startswith("pml-ops: stopped by SIGINT; kept: 0 complete trial(s) of study")
    assert "(the same command continues it)" in lines[0] and "(KILLED)" in lines[0]

    trials = optuna.load_study(study_name=study_name, storage=storage).trials
    assert len(trials) == 2 and all(t.state == TrialState.FAIL for t in trials)
    # Each worker got the SIGINT; the SIGTERM the command sends after it does not interrupt them.
    assert {t.user_attrs["fail_reason"] for t in trials} == {"stopped by SIGINT"}
    client = MlflowClient(raw["tracking"]["uri"])
    assert {client.get_run(t.user_attrs["mlflow_run_id"]).info.status for t in trials} == {"KILLED"}
    study_run = optuna.load_study(study_name=study_name, storage=storage).user_attrs["mlflow_run_id"]
    assert client.get_run(study_run).info.status == "KILLED"
