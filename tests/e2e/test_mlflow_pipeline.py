"""The session pipeline's MLflow store as its users meet it, read through MLflow's own client, its
REST API (an `mlflow server` on a copy of the store) and its UI in headless Chromium: registered
models whose versions reproduce the logged test scores in a fresh process, data sets, flat
params, system metrics, provenance tags. The session pipeline runs at the smoke profile, so its
versions take the alias `smoke` and never `champion`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import mlflow
import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.conftest import REPO_ROOT
from tests.e2e.test_mlflow_server import free_port, wait_until_healthy
from tests.helpers.browser import DevTools

pytestmark = pytest.mark.e2e

ARTIFACTS = REPO_ROOT / "test-artifacts"


def _models(clone: Path) -> list[str]:
    return list(yaml.safe_load((clone / "params.yaml").read_text())["models"])


def _runs(client: MlflowClient) -> tuple[str, dict]:
    experiment = client.get_experiment_by_name("pml-ops")
    runs = client.search_runs([experiment.experiment_id], max_results=500)
    return experiment.experiment_id, {r.info.run_name: r for r in runs}


@pytest.fixture(scope="module")
def store(pipeline_run) -> tuple[Path, MlflowClient]:
    clone, _, _ = pipeline_run
    return clone, MlflowClient(f"sqlite:///{clone / 'mlflow.db'}")


CHAMPION_SCRIPT = """
import json, sys
import mlflow, numpy as np
store, n, models = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
mlflow.set_tracking_uri(f"sqlite:///{store}/mlflow.db")
with np.load(f"{store}/data/mnist.npz") as data:
    images = data["x_test"][:n].reshape(n, -1).astype(np.float32) / 255.0
out = {}
for name in models:
    frame = mlflow.pyfunc.load_model(f"models:/pml-ops-{name}@smoke").predict(images)
    # the mean as the evaluate stage takes it (units.mean_and_se): float64 over the per-image scores
    scores = frame["log_density"].to_numpy().astype(np.float64)
    out[name] = {"score": float(scores.mean()), "columns": list(frame.columns),
                 "latent": len(frame["latent_mean"][0]), "pixels": len(frame["reconstruction"][0])}
print(json.dumps(out))
"""


def test_smoke_versions_load_by_name_in_a_fresh_process_and_reproduce_the_test_scores(store):
    clone, client = store
    models = _models(clone)
    n = yaml.safe_load((clone / "params.yaml").read_text())["density"]["subset"]["test"]
    result = subprocess.run(
        [sys.executable, "-c", CHAMPION_SCRIPT, str(clone), str(n), *models],
        capture_output=True,
        text=True,
        cwd=Path("/"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    _, runs = _runs(client)
    for name in models:
        logged = runs[f"evaluate {name}"].data.metrics["test_score"]
        assert loaded[name]["score"] == pytest.approx(logged, abs=1e-5), name
        assert loaded[name]["columns"] == ["log_density", "latent_mean", "reconstruction"]
        assert loaded[name]["pixels"] == 784 and loaded[name]["latent"] == (10 if name == "gmm" else 2)


def test_each_model_is_registered_with_provenance_and_its_key_and_never_champion(store):
    clone, client = store
    _, runs = _runs(client)
    lock = yaml.safe_load((clone / "dvc.lock").read_text())
    data_md5 = next(o["md5"] for o in lock["stages"]["prepare"]["outs"] if o["path"] == "data/mnist.npz")
    n_test = yaml.safe_load((clone / "params.yaml").read_text())["density"]["subset"]["test"]
    registered = {m.name for m in client.search_registered_models()}
    assert registered == {f"pml-ops-{name}" for name in _models(clone)}
    for name in _models(clone):
        version = client.get_model_version_by_alias(f"pml-ops-{name}", "smoke")
        assert "champion" not in client.get_registered_model(f"pml-ops-{name}").aliases
        evaluate = runs[f"evaluate {name}"]
        assert float(version.tags["test_score"]) == evaluate.data.metrics["test_score"]
        assert version.tags["data_md5"] == data_md5 and version.tags["dataset"] == "mnist"
        assert version.tags["test_images"] == str(n_test) and version.tags["profile"] == "smoke"
        assert version.tags["objective"] == evaluate.data.tags["objective"]
        assert version.tags["comparability_key"] == evaluate.data.tags["comparability_key"]
        assert "smoke profile" in version.tags["not_compared"]
        assert version.tags["git_commit"] == evaluate.data.tags["git_commit"]
        assert len(version.tags["params_digest"]) == 16
        assert evaluate.data.tags["registry_alias"] == "smoke"
        logged = client.get_logged_model(version.source.removeprefix("models:/"))
        assert logged.source_run_id == runs[f"train {name}"].info.run_id  # the model training logged
        assert logged.metrics and {m.key for m in logged.metrics} >= {"test_score", "wall_time_s"}


def test_runs_carry_data_sets_flat_params_system_metrics_and_provenance(store):
    clone, client = store
    experiment_id, runs = _runs(client)
    assert client.get_experiment(experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"
    lock = yaml.safe_load((clone / "dvc.lock").read_text())
    data_md5 = next(o["md5"] for o in lock["stages"]["prepare"]["outs"] if o["path"] == "data/mnist.npz")
    train = client.get_run(runs["train vae"].info.run_id)
    assert train.data.params["vae.training.lr"] == "0.001" and train.data.params["vae.training.epochs"] == "1"
    assert not any(value.startswith("{") for value in train.data.params.values())
    inputs = {d.dataset.name: d for d in train.inputs.dataset_inputs}
    assert set(inputs) == {"mnist-train-285", "mnist-validation-15"}
    assert inputs["mnist-train-285"].dataset.digest == data_md5
    tags = {t.key: t.value for t in inputs["mnist-train-285"].tags}
    assert tags["mlflow.data.context"] == "training" and tags["split"] == "train" and tags["images"] == "285"
    test_inputs = client.get_run(runs["evaluate vae"].info.run_id).inputs.dataset_inputs
    assert [d.dataset.name for d in test_inputs] == ["mnist-test-100"]
    assert any(key.startswith("system/cpu_utilization") for key in train.data.metrics)
    assert any(key.startswith("system/system_memory_usage") for key in train.data.metrics)
    assert {run.data.tags["dvc_experiment"] for run in runs.values()} == {"workspace"}
    assert len({run.data.tags["pipeline"] for run in runs.values()}) == 1
    assert not any("mlflow.parentRunId" in run.data.tags for run in runs.values())  # flat layout


@pytest.fixture(scope="module")
def server(store, tmp_path_factory) -> Iterator[str]:
    """`mlflow server` on a copy of the pipeline's store, in its own process group."""
    clone, _ = store
    home = tmp_path_factory.mktemp("served")
    shutil.copy(clone / "mlflow.db", home / "mlflow.db")
    port = free_port()
    log = home / "server.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "mlflow"),
                "server",
                "--backend-store-uri",
                f"sqlite:///{home / 'mlflow.db'}",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            cwd=home,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process, log)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _get(url: str, path: str, **query: str) -> dict:
    with urllib.request.urlopen(f"{url}{path}?{urllib.parse.urlencode(query)}", timeout=30) as response:
        return json.loads(response.read())


def test_rest_api_serves_the_registry_and_a_worse_version_becomes_challenger(server, store, monkeypatch):
    from pml_ops.tracking.model_registry import Comparability, register

    clone, _ = store
    found = _get(server, "/api/2.0/mlflow/registered-models/search")["registered_models"]
    assert {m["name"] for m in found} == {f"pml-ops-{name}" for name in _models(clone)}
    smoke = _get(server, "/api/2.0/mlflow/registered-models/alias", name="pml-ops-vae", alias="smoke")
    version = smoke["model_version"]
    tags = {t["key"]: t["value"] for t in version["tags"]}
    score, key = float(tags["test_score"]), Comparability.from_tags(tags)
    assert key is not None and key.profile == "smoke"
    study = replace(key, profile="study")  # the same model as if registered by a study run

    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    mlflow.set_tracking_uri(server)
    try:
        first = register(version["source"], "vae", score, {"git_commit": "test"}, study)
        worse = register(version["source"], "vae", score - 1.0, {"git_commit": "test"}, study)
        better = register(version["source"], "vae", score + 1.0, {"git_commit": "test"}, study)
    finally:
        mlflow.set_tracking_uri(None)
    assert first.alias == "champion" and worse.alias == "challenger" and better.alias == "champion"
    alias = lambda a: _get(server, "/api/2.0/mlflow/registered-models/alias", name="pml-ops-vae", alias=a)  # noqa: E731
    assert alias("champion")["model_version"]["version"] == better.version
    assert alias("challenger")["model_version"]["version"] == worse.version


# MLflow's UI keeps its state in localStorage: the Models page's "new Model Registry UI" pop-up
# stays closed once dismissed and the assistant panel once closed (useLocalStorage: key + "_v" +
# version), and the experiment page's columns are the `selectedColumns` of its persisted state
# (column ids "metrics.`<key>`").
QUIET_UI = """try {
  localStorage.setItem('_mlflow_model_registry_promo_modal_dismissed_v1', 'true');
  localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true');
  localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false');
} catch (e) {}"""
METRIC_COLUMNS = ["test_score", "test_mse_posterior_sample", "test_knn_accuracy", "bits_per_dim", "val_elbo"]
SHOW_METRIC_COLUMNS = """(() => {
  const key = Object.keys(localStorage)
    .find(k => k.includes('-ExperimentPage-') && k.endsWith('-ReactComponentState'));
  if (!key) return false;
  const state = JSON.parse(localStorage.getItem(key));
  const wanted = WANTED.map(m => 'metrics.`' + m + '`');
  state.selectedColumns = [...(state.selectedColumns || []).filter(c => !wanted.includes(c)), ...wanted];
  localStorage.setItem(key, JSON.stringify(state));
  return true;
})()""".replace("WANTED", json.dumps(METRIC_COLUMNS))


def _shows(text: str) -> str:
    return f"document.body && document.body.innerText.includes({json.dumps(text)})"


def test_ui_shows_training_runs_and_registered_models(server, store, tmp_path):
    clone, client = store
    experiment_id, _ = _runs(client)
    ARTIFACTS.mkdir(exist_ok=True)
    runs_png, models_png = tmp_path / "mlflow-ui-training-runs.png", tmp_path / "mlflow-ui-models.png"
    with DevTools(tmp_path / "profile-runs", 2200, 1100) as page:
        page.open(f"{server}/#/experiments/{experiment_id}/runs", init_script=QUIET_UI)
        page.wait_for(_shows("evaluate gmm"))
        assert page.evaluate(SHOW_METRIC_COLUMNS), "the experiment page stored no UI state"
        page.call("Page.reload", page.session)
        page.wait_for(_shows("test_mse_posterior_sample"))
        text = page.evaluate("document.body.innerText")
        page.screenshot(runs_png)
    assert all(f"train {name}" in text and f"evaluate {name}" in text for name in _models(clone))
    assert all(metric in text for metric in METRIC_COLUMNS), text[:3000]
    with DevTools(tmp_path / "profile-models", 2200, 1100) as page:
        page.open(f"{server}/#/models", init_script=QUIET_UI)
        page.wait_for(_shows("pml-ops-gmm"))
        text = page.evaluate("document.body.innerText")
        dialogs = page.evaluate("document.querySelectorAll('[role=dialog]').length")
        page.screenshot(models_png)
    assert all(f"pml-ops-{name}" in text for name in _models(clone))
    assert dialogs == 0 and "Model Aliases" not in text  # the pop-up's text
    for png in (runs_png, models_png):
        assert png.stat().st_size > 20_000, png.name  # a blank page is a few kB
        shutil.copy(png, ARTIFACTS / png.name)
