"""`dvc repro gp bayesopt` at reduced settings in a temporary clone; metrics checked against
ArviZ on the saved InferenceData and the MLflow runs through MlflowClient."""

from __future__ import annotations

import json
import os

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.conftest import run

pytestmark = pytest.mark.e2e


def test_dvc_repro_gp_and_bayesopt(pipeline_run):
    import arviz as az

    temp_clone, stdout, env = pipeline_run
    params = yaml.safe_load((temp_clone / "params.yaml").read_text())
    gp, bo = params["gp"], params["bayesopt"]
    assert "Running stage 'gp'" in stdout and "Running stage 'bayesopt'" in stdout

    metrics = json.loads((temp_clone / gp["outputs"]["metrics"]).read_text())
    idata = az.from_netcdf(str(temp_clone / gp["outputs"]["inference_data"]))
    assert idata.posterior["lengthscale"].shape == (2, 60)
    for name in ("variance", "lengthscale"):
        assert metrics[f"ess_bulk_{name}"] == pytest.approx(float(az.ess(idata, method="bulk")[name]))
        assert metrics[f"ess_tail_{name}"] == pytest.approx(float(az.ess(idata, method="tail")[name]))
        assert metrics[f"r_hat_{name}"] == pytest.approx(float(az.rhat(idata)[name]))
    assert metrics["divergences"] == int(idata.sample_stats["diverging"].sum())
    assert metrics["chain_processes"] == min(2, os.cpu_count() or 1)
    assert metrics["wall_time_s"] > 0
    figures = {p.name for p in (temp_clone / gp["outputs"]["figures"]).iterdir()}
    assert {
        "posterior_densities.png",
        "trace.png",
        "samples_loglog.png",
        "predictive.png",
        "predictive_x_star.png",
    } <= figures

    bo_metrics = json.loads((temp_clone / bo["outputs"]["metrics"]).read_text())
    history = json.loads((temp_clone / bo["outputs"]["history"]).read_text())
    assert len(history["x"]) == 5 + 2 and len(history["best_so_far"]) == 3
    assert bo_metrics["best_f"] == min(history["y"]) and bo_metrics["wall_time_s"] > 0
    assert bo_metrics["global_minimum_f"] == pytest.approx(-4.954, abs=1e-3)
    bo_figures = {p.name for p in (temp_clone / bo["outputs"]["figures"]).iterdir()}
    assert bo_figures == {"iteration_01.png", "iteration_02.png", "best_so_far.png"}

    client = MlflowClient(f"sqlite:///{temp_clone / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(params["tracking"]["experiment"])
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert runs["gp"].data.metrics["ess_bulk_lengthscale"] == pytest.approx(metrics["ess_bulk_lengthscale"])
    assert runs["gp"].data.params["gp.nuts.num_samples"] == "60"
    assert runs["bayesopt"].data.metrics["best_f"] == pytest.approx(bo_metrics["best_f"])
    steps = client.get_metric_history(runs["bayesopt"].info.run_id, "best_so_far")
    assert [m.value for m in sorted(steps, key=lambda m: m.step)] == pytest.approx(history["best_so_far"])
    artifacts = {a.path for a in client.list_artifacts(runs["gp"].info.run_id, "figures")}
    assert "figures/predictive.png" in artifacts

    again = run(["dvc", "repro", "gp", "bayesopt"], temp_clone, env)
    assert "Running stage" not in again.stdout
