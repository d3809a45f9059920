"""The tuning machinery on SQLite with a cheap synthetic objective: the two-objective study,
completion, pruning over the training cost cap, failures, continuation, nested MLflow runs, the
Pareto front, figures and the best-params file."""

from __future__ import annotations

import copy
import json
import threading
import time
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient

from pml_ops.config import parse_params
from pml_ops.core.errors import TuningError
from pml_ops.report.sections import tuning_section
from pml_ops.tracking.store import store_lock
from pml_ops.tuning.command import Overrides, tune
from pml_ops.tuning.study import split_trials
from pml_ops.tuning.task import MlflowTarget, TrialRunner
from tests.conftest import REPO_ROOT
from tests.helpers.tuning_helpers import ImpossibleGeometry, SyntheticTask

GOOD = {
    "kernel_size": 3,
    "stride": 2,
    "conv_layers": 2,
    "hidden": 64,
    "lr": 3e-3,
    "channels_1": 16,
    "channels_2": 32,
}
NEAR = {**GOOD, "lr": 2e-3}
# 4 x 192 channels x 25 / (48 x 9) = 44x the reference cost: over max_train_cost_ratio (8), untrained
COSTLY = {
    **GOOD,
    "kernel_size": 5,
    "stride": 1,
    "conv_layers": 3,
    "channels_1": 64,
    "channels_2": 64,
    "channels_3": 64,
}
IMPOSSIBLE = {**GOOD, "kernel_size": 7, "stride": 2, "conv_layers": 3, "channels_3": 8}


def tuning_params(tmp_path: Path, **tuning_changes):
    raw = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    raw = copy.deepcopy(raw)
    raw["tracking"]["uri"] = f"sqlite:///{tmp_path}/mlflow.db"
    raw["tracking"]["artifact_root"] = str(tmp_path / "mlartifacts")
    tuning = raw["tuning"]
    tuning.update(
        {
            "storage": f"sqlite:///{tmp_path}/optuna.db",
            "output_dir": str(tmp_path / "tuning"),
            "best_params_file": str(tmp_path / "params_tuned.yaml"),
            **tuning_changes,
        }
    )
    tuning["trial"]["epochs"] = 3
    return parse_params(raw)


def child_runs(params, study_run_id: str):
    client = MlflowClient(params.tracking.uri)
    experiment = client.get_experiment_by_name(params.tracking.experiment)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    return client, [r for r in runs if r.data.tags.get("mlflow.parentRunId") == study_run_id]


def test_split_trials_is_exact():
    assert split_trials(7, 3) == [3, 2, 2]
    assert split_trials(2, 4) == [1, 1]
    assert sum(split_trials(101, 8)) == 101


def test_study_prunes_records_failures_continues_and_nests_runs(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    params = tuning_params(tmp_path, trials=6, workers=1)
    task = SyntheticTask(params.tuning.cvae.space, params.tuning.trial.epochs)
    study = optuna.create_study(
        study_name=params.tuning.cvae.study_name,
        storage=params.tuning.storage,
        directions=["maximize", "minimize"],
    )
    for config in (GOOD, NEAR, COSTLY, IMPOSSIBLE):
        study.enqueue_trial(config)

    summary = tune(params, task, Overrides(), project_dir=tmp_path)

    states = summary["states"]
    assert summary["trials"] == 6
    assert states["complete"] + states["pruned"] + states["fail"] == 6 and states["running"] == 0
    assert summary["objectives"] == {"val_elbo": "maximize", "mflop_per_image": "minimize"}
    assert [p["number"] for p in summary["pruned"]][:1] == [2]
    assert summary["pruned"][0]["reason"].startswith("over the training cost cap before training: 44.4 MFLOP")
    assert summary["failed"] == [
        {
            "number": 3,
            "reason": "ImpossibleGeometry: kernel 7, stride 2: a 3-layer stack shrinks 28x28 below 1x1",
        }
    ]
    study = optuna.load_study(study_name=study.study_name, storage=params.tuning.storage)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert all(len(t.values) == 2 and t.values[1] == task.cost(t.params) for t in complete)
    # The front, checked by brute force: no other completed trial is at least as good on both.
    front = {
        t.number
        for t in complete
        if not any(
            o.values[0] >= t.values[0] and o.values[1] <= t.values[1] and o.values != t.values
            for o in complete
        )
    }
    assert set(summary["cost"]["pareto_front"]) == front
    within = [t for t in complete if t.values[1] <= 2.0]  # max_cost_ratio x the reference 1.0
    best = summary["best"]
    assert best["value"] == max(t.values[0] for t in within)
    assert best["value"] >= study.trials[0].values[0]  # at least as good as the enqueued GOOD
    written = yaml.safe_load(Path(params.tuning.best_params_file).read_text())
    assert written["cvae_tuned"]["architecture"] == best["params"]
    assert written["cvae_tuned"]["source"]["trial"] == best["number"]
    out = Path(params.tuning.output_dir) / "cvae"
    assert sorted(p.name for p in (out / "figures").iterdir()) == [
        "optimization_history.png",
        "parallel_coordinate.png",
        "param_importances.png",
        "pareto_front.png",
    ]
    assert (out / "summary.json").is_file()
    assert {t["number"] for t in summary["cost"]["trials"]} == {t.number for t in complete}
    assert all(t.user_attrs["seconds_per_epoch"] > 0 for t in complete)
    assert summary["cost"]["reference_seconds_per_epoch"] == 1.0  # SyntheticTask's
    assert written["cvae_tuned"]["source"]["cost_ratio"] == task.cost(best["params"]) <= 2.0

    client, children = child_runs(params, summary["mlflow_study_run"])
    assert sorted(int(r.data.tags["optuna.trial"]) for r in children) == list(range(6))
    by_trial = {int(r.data.tags["optuna.trial"]): r for r in children}
    assert by_trial[0].data.tags["optuna.state"] == "COMPLETE" and by_trial[0].info.status == "FINISHED"
    assert by_trial[0].data.params["lr"] == "0.003"
    history = client.get_metric_history(by_trial[0].info.run_id, "val_elbo")
    assert [m.step for m in history] == [1, 2, 3]
    assert by_trial[2].data.tags["optuna.state"] == "PRUNED"
    assert by_trial[3].data.tags["optuna.state"] == "FAIL" and by_trial[3].info.status == "FAILED"
    assert "ImpossibleGeometry" in by_trial[3].data.tags["optuna.fail_reason"]
    artifacts = {a.path for a in client.list_artifacts(summary["mlflow_study_run"], "figures")}
    assert artifacts == {
        f"figures/{n}.png"
        for n in ("optimization_history", "param_importances", "parallel_coordinate", "pareto_front")
    }
    table = json.loads(
        Path(client.download_artifacts(summary["mlflow_study_run"], "pareto_front.json")).read_text()
    )
    columns = table["columns"]
    numbers = [row[columns.index("number")] for row in table["data"]]
    assert numbers == summary["cost"]["pareto_front"]
    candidate = [
        row[columns.index("number")] for row in table["data"] if row[columns.index("promotion_candidate")]
    ]
    assert candidate == [best["number"]]
    # The report shows the front with the promoted trial marked.
    (report_table,) = tuning_section(params, tmp_path).tables
    assert [row["trial"] for row in report_table.rows] == summary["cost"]["pareto_front"]
    assert [row["trial"] for row in report_table.rows if row[""] == "best within budget, promoted"] == [
        best["number"]
    ]
    study_metrics = client.get_run(summary["mlflow_study_run"]).data.metrics
    assert (
        study_metrics["pareto_front_size"] == len(front) and study_metrics["best_val_elbo"] == best["value"]
    )

    # Running the same study again continues it, under the same study run.
    again = tune(params, task, Overrides(trials=2), project_dir=tmp_path)
    assert again["trials"] == 8 and again["mlflow_study_run"] == summary["mlflow_study_run"]
    _, children = child_runs(params, summary["mlflow_study_run"])
    assert len(children) == 8


def test_two_worker_processes_share_a_sqlite_study(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    params = tuning_params(tmp_path, trials=5, workers=2)
    task = SyntheticTask(params.tuning.cvae.space, params.tuning.trial.epochs)
    summary = tune(params, task, Overrides(), project_dir=tmp_path)
    assert summary["trials"] == 5 and summary["states"]["running"] == 0
    _, children = child_runs(params, summary["mlflow_study_run"])
    assert sorted(int(r.data.tags["optuna.trial"]) for r in children) == list(range(5))
    assert len({r.data.tags["pml_ops.worker"] for r in children}) == 2


def test_single_objective_study_of_the_same_name_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    params = tuning_params(tmp_path, trials=1)
    optuna.create_study(
        study_name=params.tuning.cvae.study_name, storage=params.tuning.storage, direction="maximize"
    )
    task = SyntheticTask(params.tuning.cvae.space, 1)
    with pytest.raises(
        TuningError, match=r"has objective\(s\) \(maximize\), not \(val_elbo, mflop_per_image\)"
    ):
        tune(params, task, Overrides(), project_dir=tmp_path)
    renamed = optuna.create_study(
        study_name="renamed", storage=params.tuning.storage, directions=["maximize", "minimize"]
    )
    renamed.enqueue_trial(GOOD)
    summary = tune(params, task, Overrides(study_name="renamed"), project_dir=tmp_path)  # a new name works
    assert summary["study"] == "renamed" and summary["trials"] == 1


def test_bad_storage_url_is_named(tmp_path):
    params = tuning_params(tmp_path, storage="not a url")
    task = SyntheticTask(params.tuning.cvae.space, 1)
    with pytest.raises(Exception, match=r"tuning.storage: not a database URL: 'not a url'"):
        tune(params, task, Overrides(), project_dir=tmp_path)


def test_report_names_a_summary_of_the_single_objective_kind_instead_of_failing(tmp_path):
    params = tuning_params(tmp_path)
    folder = Path(params.tuning.output_dir) / "cvae"
    folder.mkdir(parents=True)
    old = {"study": "cvae-cost", "trials": 1, "cost": {"trials": [], "pareto_front": [1]}}
    (folder / "summary.json").write_text(json.dumps(old))
    section = tuning_section(params, tmp_path)
    assert section is not None and section.tables == []
    assert f"Not shown: `{folder / 'summary.json'}`, written by a single-objective version" in section.text
    assert tuning_section(tuning_params(tmp_path / "none"), tmp_path / "none") is None  # nothing tuned


def test_a_trials_cleanup_waits_for_the_store_lock(tmp_path, monkeypatch):
    """A stop reaches every worker at once; their cleanups end their runs one at a time under the
    store's lock (two writing one SQLite store together meet "database is locked")."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    experiment = client.create_experiment("cleanup", artifact_location=str(tmp_path / "artifacts"))
    parent = client.create_run(experiment).info.run_id
    holding_lock, released = threading.Event(), []

    def other_workers_cleanup() -> None:
        with store_lock(uri):
            holding_lock.set()
            time.sleep(0.5)
            released.append(time.time())

    def evaluate(params, on_epoch):
        threading.Thread(target=other_workers_cleanup).start()
        holding_lock.wait(10)
        raise ImpossibleGeometry("fails while the other worker holds the lock")

    params = tuning_params(tmp_path)
    task = SyntheticTask(params.tuning.cvae.space, params.tuning.trial.epochs)
    runner = TrialRunner(task, evaluate, MlflowTarget(uri, experiment, parent), None)
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.optimize(runner, n_trials=1, catch=(ImpossibleGeometry,))

    run = client.get_run(study.trials[0].user_attrs["mlflow_run_id"])
    assert run.info.status == "FAILED" and run.data.tags["optuna.state"] == "FAIL"
    assert released and run.info.end_time >= int(released[0] * 1000)
