"""The density pyfunc and the registry's champion/challenger rule on a small PPCA, read back through
MLflow's own client (no pipeline); the store's location under `dvc exp`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from pml_ops.config import TrackingParams
from pml_ops.density.models.ppca import PPCA
from pml_ops.density.pyfunc import log_and_record, record_path
from pml_ops.tracking.model_registry import register
from pml_ops.tracking.provenance import dvc_experiment
from pml_ops.tracking.store import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, configure, tracking_uri

PARAMS = TrackingParams(uri="sqlite:///mlflow.db", experiment="unit", artifact_root="mlartifacts")


def test_store_is_the_project_root_under_dvc_exp(tmp_path: Path, monkeypatch):
    """`dvc exp run --temp`/`--queue` run stages in a temporary copy and set DVC_ROOT to the
    project: a relative store is resolved there, not in the copy DVC deletes."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    workspace = tmp_path / ".dvc" / "tmp" / "exps" / "tmpabc"
    workspace.mkdir(parents=True)
    monkeypatch.chdir(workspace)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    assert tracking_uri(PARAMS) == f"sqlite:///{workspace}/mlflow.db"
    assert dvc_experiment() == "workspace"
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.setenv("DVC_EXP_NAME", "sunny-deer")
    assert tracking_uri(PARAMS) == f"sqlite:///{tmp_path}/mlflow.db"
    assert dvc_experiment() == "sunny-deer"


def test_experiment_opens_on_training_runs(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    experiment_id = configure(PARAMS, tmp_path)
    tags = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_experiment(experiment_id).tags
    assert tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND == "custom_model_development"


@pytest.fixture
def logged_ppca(tmp_path: Path, monkeypatch):
    """A PPCA fitted on random images, logged as the density pyfunc in a run of a fresh store."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    configure(PARAMS, tmp_path)
    images = np.random.default_rng(0).random((40, 784)).astype(np.float32)
    model = PPCA(2).fit_pixels(images)
    artifact = tmp_path / "models" / "ppca" / "ppca.npz"
    model.save(artifact)
    with mlflow.start_run():
        model_id = log_and_record(model, artifact, images[:2], 0, {"model": "ppca"})
    return tmp_path, model, model_id, images


def test_pyfunc_predicts_the_models_own_numbers_in_a_fresh_process(logged_ppca):
    store, model, model_id, images = logged_ppca
    assert record_path(store / "models" / "ppca" / "ppca.npz").is_file()
    np.save(store / "images.npy", images)
    script = f"""
import mlflow, numpy as np, pandas as pd
mlflow.set_tracking_uri("sqlite:///{store}/mlflow.db")
loaded = mlflow.pyfunc.load_model("models:/{model_id}")
x = np.load("{store}/images.npy")
out = loaded.predict(x)
assert list(out.columns) == ["log_density", "latent_mean", "reconstruction"], out.columns
assert np.array_equal(out.log_density, loaded.predict(pd.DataFrame(x)).log_density)
columns = [out.log_density, np.stack(out.latent_mean), np.stack(out.reconstruction)]
np.save("{store}/out.npy", np.column_stack(columns))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd="/")
    assert result.returncode == 0, result.stderr[-3000:]
    info = mlflow.models.get_model_info(f"models:/{model_id}")
    assert info.signature.inputs.to_dict() == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": (-1, 784)}}
    ]
    assert [c["name"] for c in info.signature.outputs.to_dict()] == [
        "log_density",
        "latent_mean",
        "reconstruction",
    ]
    out = np.load(store / "out.npy")
    np.testing.assert_allclose(out[:, 0], model.log_density(images), rtol=1e-12)
    np.testing.assert_allclose(out[:, 1:3], model.encode(images), rtol=1e-12)
    np.testing.assert_allclose(out[:, 3:], model.reconstruct(images, False, 0), rtol=1e-12)


def test_champion_moves_only_for_a_better_test_score(logged_ppca):
    _, _, model_id, _ = logged_ppca
    client = MlflowClient()
    first = register(f"models:/{model_id}", "ppca", -100.0, {"git_commit": "a"})
    assert (first.name, first.alias, first.previous_champion) == ("pml-ops-ppca", "champion", None)
    worse = register(f"models:/{model_id}", "ppca", -101.0, {"git_commit": "b"})
    assert (worse.alias, worse.previous_champion) == ("challenger", first.version)
    assert client.get_model_version_by_alias("pml-ops-ppca", "champion").version == first.version
    assert client.get_model_version_by_alias("pml-ops-ppca", "challenger").version == worse.version
    better = register(f"models:/{model_id}", "ppca", -99.5, {"git_commit": "c"})
    assert better.alias == "champion"
    champion = client.get_model_version_by_alias("pml-ops-ppca", "champion")
    assert champion.version == better.version
    assert champion.tags["test_score"] == "-99.5" and champion.tags["git_commit"] == "c"
    assert champion.source == f"models:/{model_id}"
    versions = client.search_model_versions("name = 'pml-ops-ppca'")
    assert sorted(int(v.version) for v in versions) == [1, 2, 3]


def test_gmm_latent_is_the_component_posterior_and_reconstruction_its_mean():
    from pml_ops.config import GmmParams
    from pml_ops.density.models.gmm import GMM

    images = np.random.default_rng(1).random((60, 784))
    params = GmmParams(n_components=3, covariance_type="diag", reg_covar=0.01, max_iter=5, n_init=1)
    gmm = GMM(params, 0).fit_pixels(images)
    weights = gmm.encode(images)
    np.testing.assert_allclose(weights.sum(1), 1.0)
    np.testing.assert_allclose(gmm.reconstruct(images, False, 0), weights @ gmm.component_means())
    drawn = gmm.reconstruct(images, True, 0)
    means = gmm.component_means()
    assert all(any(np.array_equal(row, mean) for mean in means) for row in drawn)
