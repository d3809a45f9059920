"""`dvc repro` of every density stage in a temporary clone, on a few hundred images, 1 epoch."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from scipy.stats import multivariate_normal

from pml_ops.config import load_params
from pml_ops.data.mnist import load_mnist
from pml_ops.density import families
from pml_ops.density.models.ppca import PPCA
from tests.conftest import copy_clone, run

pytestmark = pytest.mark.e2e

PNG = b"\x89PNG\r\n\x1a\n"


def test_density_pipeline_end_to_end(pipeline_run, tmp_path):
    temp_clone, stdout, stage_env = pipeline_run
    params = load_params(temp_clone / "params.yaml")
    MODELS = families.model_names(params)  # e.g. cvae_tuned from params_tuned.yaml
    for name in MODELS:
        assert f"Running stage 'train@{name}'" in stdout and f"Running stage 'evaluate@{name}'" in stdout

    metrics = temp_clone / "metrics"
    for name in MODELS:
        train = json.loads((metrics / "train" / f"{name}.json").read_text())
        evaluation = json.loads((metrics / "evaluate" / f"{name}.json").read_text())
        assert train["wall_time_s"] > 0 and evaluation["wall_time_s"] > 0
        assert train["peak_rss_mib"] > 50 and evaluation["peak_rss_mib"] > 50  # torch alone is more
        assert train["train_images"] == 285 and evaluation["test_images"] == 100
        info = json.loads((metrics / "evaluate" / f"{name}_info.json").read_text())
        assert info["units"] == "nats per image"
        figures = sorted(p.name for p in (temp_clone / "figures" / name).iterdir())
        latent = "test_knn_accuracy" in evaluation  # a latent space: its figures, else the GMM's
        expected = ["grid.png", "latent.png", "reconstructions.png"] if latent else ["components.png"]
        assert figures == expected
        assert all((temp_clone / "figures" / name / f).read_bytes().startswith(PNG) for f in figures)
    vae = json.loads((metrics / "evaluate" / "vae.json").read_text())
    assert vae["iwae_samples"] == 5 and vae["test_iwae"] > vae["subset_score"]  # K = 5 bound is tighter
    assert vae["iwae_images"] == vae["subset_images"] == 100 and "bits_per_dim" not in vae  # Bernoulli
    normalised = 0
    for name in MODELS:  # a normalised density: bits/dim on the dequantised images
        scored = json.loads((metrics / "evaluate" / f"{name}.json").read_text())
        info = json.loads((metrics / "evaluate" / f"{name}_info.json").read_text())
        if not info["normalised"]:
            assert "bits_per_dim" not in scored and info["objective"] == "ELBO"
            continue
        normalised += 1
        assert np.isfinite(scored["bits_per_dim"]) and scored["bits_per_dim_se"] > 0
        assert info["bits_per_dim_estimate"] == (
            "exact" if info["objective"] == "exact log-likelihood" else "IWAE K=5 (an upper bound)"
        )
    assert normalised >= 2
    # The PPCA score is the exact Gaussian log-likelihood of the saved model (scipy as reference).
    ppca = PPCA.load(temp_clone / "models" / "ppca" / "ppca.npz")
    x_test = (
        load_mnist(temp_clone / "data" / "mnist.npz").x_test[:100].reshape(100, -1).astype(np.float32) / 255.0
    )
    cov = ppca.W_ @ ppca.W_.T + ppca.sigma2_ * np.eye(784)
    reference = multivariate_normal(ppca.mu_, cov).logpdf(x_test).mean()
    ppca_score = json.loads((metrics / "evaluate" / "ppca.json").read_text())["test_score"]
    assert ppca_score == pytest.approx(reference, rel=1e-6)
    history = json.loads((metrics / "train" / "vae_history.json").read_text())
    assert [row["epoch"] for row in history] == [1]

    table = json.loads((temp_clone / "reports" / "density_comparison.json").read_text())
    assert sorted(table["models"]) == sorted(MODELS)
    for name in MODELS:
        evaluation = json.loads((metrics / "evaluate" / f"{name}.json").read_text())
        assert table["models"][name]["test_score"] == evaluation["test_score"]
        info = json.loads((metrics / "evaluate" / f"{name}_info.json").read_text())
        assert table["models"][name]["observation"] == info["observation"] and "observation" not in evaluation
    markdown = (temp_clone / "reports" / "density_comparison.md").read_text()
    assert all(f"| {name} |" in markdown for name in MODELS)

    shown = run(["dvc", "metrics", "show", "--json"], temp_clone, stage_env).stdout
    assert "test_mse_posterior_mean" in shown and "val_elbo" in shown
    run(["dvc", "plots", "show", "-o", "plots_out"], temp_clone, stage_env)
    assert "val_elbo" in (temp_clone / "plots_out" / "index.html").read_text()

    client = MlflowClient(f"sqlite:///{temp_clone / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("pml-ops")
    runs = client.search_runs([experiment.experiment_id])
    by_name = {r.info.run_name: r for r in runs}
    assert len({r.data.tags["pipeline"] for r in runs}) == 1  # one pipeline run, flat
    for name in MODELS:
        for kind in ("train", "evaluate"):
            child = by_name[f"{kind} {name}"]
            assert len(child.data.tags["git_commit"]) >= 40 and child.data.tags["data_md5"] != "unknown"
            assert "wall_time_s" in child.data.metrics
    assert "bits_per_dim" in by_name["evaluate ppca"].data.metrics
    assert "test_iwae_mc_se" in by_name["evaluate vae"].data.metrics
    train_vae = by_name["train vae"]
    assert [m.step for m in client.get_metric_history(train_vae.info.run_id, "val_elbo")] == [1]
    logged = client.search_logged_models([experiment.experiment_id])
    assert {m.source_run_id for m in logged if m.name == "model"} == {
        by_name[f"train {name}"].info.run_id for name in MODELS
    }
    assert {a.path for a in client.list_artifacts(by_name["evaluate cvae"].info.run_id, "figures")} == {
        "figures/grid.png", "figures/latent.png", "figures/reconstructions.png"
    }  # fmt: skip

    # Nothing changed: nothing runs. A GMM setting changes: only the GMM and what reads it rerun.
    temp_clone = copy_clone(temp_clone, tmp_path / "copy")
    again = run(["dvc", "repro", "compare_density"], temp_clone, stage_env)
    assert "Running stage" not in again.stdout
    text = (temp_clone / "params.yaml").read_text().replace("reg_covar: 0.01", "reg_covar: 0.02")
    (temp_clone / "params.yaml").write_text(text)
    changed = run(["dvc", "repro", "compare_density"], temp_clone, stage_env)
    ran = sorted(
        line.split("'")[1] for line in changed.stdout.splitlines() if line.startswith("Running stage")
    )
    assert ran == ["compare_density", "evaluate@gmm", "train@gmm"]
    # `dvc repro` (all stages) now reruns only the report, which reads the changed table.
    final = run(["dvc", "repro"], temp_clone, stage_env)
    assert [line.split("'")[1] for line in final.stdout.splitlines() if line.startswith("Running stage")] == [
        "report"
    ]
