"""PPCA against its closed form and scipy; GMM sampling; metrics against direct computations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from pml_ops.config import GmmParams
from pml_ops.core.errors import ConfigError
from pml_ops.density.evaluation import knn_accuracy, reconstruction_mse
from pml_ops.density.models.gmm import GMM
from pml_ops.density.models.ppca import PPCA


@pytest.fixture
def data() -> np.ndarray:
    rng = np.random.default_rng(0)
    latent = rng.standard_normal((400, 2))
    mixing = rng.standard_normal((2, 6)) * [[3.0], [1.5]]
    return latent @ mixing + 0.3 * rng.standard_normal((400, 6)) + np.arange(6)


def test_ppca_matches_the_closed_form(data):
    model = PPCA(latent_dim=2).fit_pixels(data)
    cov = np.cov(data, rowvar=False, bias=True)
    eigvals = np.sort(np.linalg.eigvalsh(cov))[::-1]
    assert model.sigma2_ == pytest.approx(eigvals[2:].mean(), rel=1e-10)
    np.testing.assert_allclose(model.mu_, data.mean(0), rtol=1e-12)
    # W W^T = U (L - sigma^2) U^T: the model covariance keeps the two leading eigenpairs of S.
    model_cov = model.W_ @ model.W_.T + model.sigma2_ * np.eye(6)
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(model_cov))[::-1][:2], eigvals[:2], rtol=1e-8)
    np.testing.assert_allclose(
        np.sort(np.linalg.eigvalsh(model.W_.T @ model.W_)), np.sort(eigvals[:2] - model.sigma2_)
    )


def test_ppca_log_likelihood_equals_scipy_gaussian(data):
    model = PPCA(latent_dim=2).fit_pixels(data[:300])
    reference = multivariate_normal(model.mu_, model.W_ @ model.W_.T + model.sigma2_ * np.eye(6)).logpdf(
        data[300:]
    )
    np.testing.assert_allclose(model.log_density(data[300:]), reference, rtol=1e-9)


def test_ppca_is_the_maximum_of_the_likelihood(data):
    model = PPCA(latent_dim=2).fit_pixels(data)
    best = model.log_density(data).sum()
    rng = np.random.default_rng(1)
    for _ in range(5):
        other = PPCA(latent_dim=2)
        other.W_ = model.W_ + 0.05 * rng.standard_normal(model.W_.shape)
        other.mu_, other.sigma2_ = model.mu_, model.sigma2_ * 1.05
        assert other.log_density(data).sum() < best


def test_ppca_posterior_is_the_gaussian_conditional(data):
    model = PPCA(latent_dim=2).fit_pixels(data)
    mean, cov = model.posterior(data[:3])
    # Joint Gaussian of (z, x): z | x has mean W^T C^-1 (x - mu) and covariance I - W^T C^-1 W.
    c = model.W_ @ model.W_.T + model.sigma2_ * np.eye(6)
    np.testing.assert_allclose(mean, (data[:3] - model.mu_) @ np.linalg.solve(c, model.W_), rtol=1e-8)
    np.testing.assert_allclose(cov, np.eye(2) - model.W_.T @ np.linalg.solve(c, model.W_), atol=1e-10)
    np.testing.assert_allclose(
        model.reconstruct(data[:3], sample=False, seed=0), mean @ model.W_.T + model.mu_
    )
    assert not np.allclose(model.reconstruct(data[:3], sample=True, seed=0), mean @ model.W_.T + model.mu_)


def test_ppca_rejects_impossible_latent_dimension(data):
    with pytest.raises(ConfigError, match="ppca.latent_dim"):
        PPCA(latent_dim=6).fit_pixels(data)


@pytest.mark.parametrize("kind", ["full", "tied", "diag", "spherical"])
def test_gmm_component_samples_follow_the_component(kind, data):
    params = GmmParams(n_components=2, covariance_type=kind, reg_covar=1e-3, max_iter=50, n_init=1)
    model = GMM(params, seed=0).fit_pixels(data)
    samples = model.sample_component(1, 4000, seed=0)
    np.testing.assert_allclose(samples.mean(0), model.component_means()[1], atol=0.2)
    np.testing.assert_allclose(np.cov(samples, rowvar=False), model.component_covariance(1), atol=0.3)
    np.testing.assert_allclose(model.log_density(data[:5]), model.mixture.score_samples(data[:5]))
    assert len(model.sample(7, seed=0)) == 7


def test_mse_and_knn_accuracy():
    images = np.array([[0.0, 1.0], [0.5, 0.5]])
    assert reconstruction_mse(images, np.array([[0.0, 0.0], [0.5, 1.0]])) == pytest.approx((1 + 0.25) / 4)
    latent = np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [5.2]])
    labels = np.array([0, 0, 0, 1, 1, 1])
    assert knn_accuracy(
        latent, labels, np.array([[0.05], [5.05], [0.0]]), np.array([0, 1, 1]), k=3
    ) == pytest.approx(2 / 3)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_gmm_round_trips_through_plain_arrays(tmp_path, covariance_type):
    """The saved GMM reloads without pickle and scores exactly like the fitted one."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-2, 1, (60, 3)), rng.normal(2, 0.5, (60, 3))])
    params = GmmParams(
        n_components=2, covariance_type=covariance_type, reg_covar=1e-6, max_iter=100, n_init=1
    )
    fitted = GMM(params, seed=0).fit_pixels(x)
    fitted.save(tmp_path / "gmm.npz")
    with np.load(tmp_path / "gmm.npz", allow_pickle=False) as npz:
        assert npz["meta"].dtype.kind == "U"  # no object arrays: loads without pickle
    loaded = GMM.load(tmp_path / "gmm.npz", expected=params.model_dump())
    assert loaded.params == params
    np.testing.assert_allclose(loaded.log_density(x), fitted.mixture.score_samples(x), rtol=1e-12)
    np.testing.assert_array_equal(loaded.mixture.predict(x), fitted.mixture.predict(x))
