"""The density pyfunc on a small PPCA (the root conftest's `logged_ppca`), read back through
MLflow's own client in a fresh process (no pipeline); the GMM's latent and reconstruction columns."""

from __future__ import annotations

import subprocess
import sys

import mlflow
import numpy as np

from pml_ops.density.pyfunc import record_path


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
