"""The GP model against independent references: numpy/scipy closed forms and Pyro's own
density for the plain `GPRegression` model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from pml_ops.core.expression import Expression
from pml_ops.gp.model import GPModel, LogNormalPrior
from pml_ops.gp.predict import predict, sample_paths
from tests.helpers.gp_reference import GPPotential, plain_gp_regression

STUDY = "sin(20*x) + 2*cos(14*x) - 2*sin(6*x)"


@pytest.fixture
def model() -> GPModel:
    x = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    return GPModel(x, Expression(STUDY)(x), 1e-4, LogNormalPrior(-1.0, 1.0), LogNormalPrior(0.0, 2.0))


def numpy_kernel(a, b, variance, lengthscale):
    return variance * np.exp(-0.5 * np.subtract.outer(a, b) ** 2 / lengthscale**2)


@pytest.mark.parametrize("variance,lengthscale", [(1.0, 0.3), (2.5, 0.12), (0.4, 1.7)])
def test_predictive_equals_closed_form(model, variance, lengthscale):
    x_new = np.linspace(-1, 1, 9)
    cov = numpy_kernel(model.x, model.x, variance, lengthscale) + model.noise * np.eye(5)
    cross = numpy_kernel(model.x, x_new, variance, lengthscale)
    mean = cross.T @ np.linalg.solve(cov, model.y)
    var = variance - np.einsum("ij,ij->j", cross, np.linalg.solve(cov, cross))
    got = predict(
        model, x_new, {"variance": np.array([variance, 1.0]), "lengthscale": np.array([lengthscale, 0.5])}
    )
    np.testing.assert_allclose(got.mean[0], mean, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(got.variance[0], np.maximum(var, 0), rtol=1e-6, atol=1e-8)


def test_predictive_agrees_with_pyro_gpregression(model):
    regression = plain_gp_regression(model)
    regression.kernel.variance = torch.tensor(1.3, dtype=torch.float64)
    regression.kernel.lengthscale = torch.tensor(0.25, dtype=torch.float64)
    x_new = np.linspace(-1, 1, 11)
    with torch.no_grad():
        mean, var = regression(torch.tensor(x_new), full_cov=False)
    got = predict(model, x_new, {"variance": np.array([1.3]), "lengthscale": np.array([0.25])})
    np.testing.assert_allclose(got.mean[0], mean.numpy(), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(got.variance[0], var.numpy(), rtol=1e-6, atol=1e-9)


def test_mixture_moments_follow_total_variance(model):
    got = predict(
        model,
        np.array([0.25, -0.25]),
        {"variance": np.array([1.0, 3.0]), "lengthscale": np.array([0.2, 0.4])},
    )
    np.testing.assert_allclose(got.mixture_mean(), got.mean.mean(0))
    np.testing.assert_allclose(got.mixture_variance(), got.variance.mean(0) + got.mean.var(0))


def test_thompson_path_interpolates_data_and_has_posterior_spread(model):
    grid = np.concatenate([model.x, np.linspace(-1, 1, 301)])
    rng = np.random.default_rng(0)
    paths = np.stack(
        [sample_paths(model, grid, {"variance": 1.5, "lengthscale": 0.2}, rng) for _ in range(200)]
    )
    np.testing.assert_allclose(paths[:, :5].mean(0), model.y, atol=0.05)
    exact = predict(model, grid[5:], {"variance": np.array([1.5]), "lengthscale": np.array([0.2])})
    np.testing.assert_allclose(paths[:, 5:].mean(0), exact.mean[0], atol=0.35)
    np.testing.assert_allclose(paths[:, 5:].std(0), np.sqrt(exact.variance[0]), atol=0.25)


def reference_log_joint(model: GPModel, log_v: float, log_l: float) -> float:
    cov = numpy_kernel(model.x, model.x, np.exp(log_v), np.exp(log_l)) + model.noise * np.eye(5)
    return (
        stats.multivariate_normal(np.zeros(5), cov).logpdf(model.y)
        + stats.norm(-1.0, 1.0).logpdf(log_v)
        + stats.norm(0.0, 2.0).logpdf(log_l)
    )


POINTS = [(0.0, 0.0), (1.0, -1.0), (-2.0, 0.5), (0.7, -1.6), (3.0, -4.0)]


def test_potential_equals_scipy_and_the_plain_pyro_model(model):
    from pyro.infer.mcmc.util import initialize_model

    _, plain_potential, _, _ = initialize_model(plain_gp_regression(model).model)
    potential = GPPotential(model)
    for log_v, log_l in POINTS:
        ours = {
            "log_variance": torch.tensor(log_v, dtype=torch.float64),
            "log_lengthscale": torch.tensor(log_l, dtype=torch.float64),
        }
        plain = {"kernel.variance": ours["log_variance"], "kernel.lengthscale": ours["log_lengthscale"]}
        expected = -reference_log_joint(model, log_v, log_l)
        assert float(potential(ours)) == pytest.approx(expected, rel=1e-9)
        assert float(plain_potential(plain).detach()) == pytest.approx(expected, rel=1e-9)
        batched = potential.log_joint(ours["log_variance"][None], ours["log_lengthscale"][None])
        assert float(-batched[0]) == pytest.approx(expected, rel=1e-9)


def test_hand_written_gradient_equals_autograd(model):
    potential = GPPotential(model)
    for log_v, log_l in POINTS:
        a = torch.tensor(log_v, dtype=torch.float64, requires_grad=True)
        b = torch.tensor(log_l, dtype=torch.float64, requires_grad=True)
        ours = torch.autograd.grad(potential({"log_variance": a, "log_lengthscale": b}), [a, b])
        a2, b2 = a.detach().requires_grad_(), b.detach().requires_grad_()
        auto = torch.autograd.grad(-potential.log_joint(a2, b2), [a2, b2])
        np.testing.assert_allclose([float(g) for g in ours], [float(g) for g in auto], rtol=1e-7)


def test_predictive_summary_band_is_the_gaussian_interval_at_one_hyperparameter_draw(model):
    """With a single (variance, lengthscale) the predictive of f is Gaussian: the band from draws
    must approach mean +- 1.96 sd of the closed form, and the x* metrics its moments."""
    from pml_ops.gp.predict import summarize_predictive

    grid = np.linspace(-1, 1, 9)
    hyperparameters = {"variance": np.array([1.5]), "lengthscale": np.array([0.3])}
    summary = summarize_predictive(model, grid, -0.25, hyperparameters, np.random.default_rng(0), 40000)
    exact = predict(model, grid, hyperparameters)
    sd = np.sqrt(exact.mixture_variance())
    np.testing.assert_allclose(summary.mean, exact.mixture_mean(), atol=1e-10)
    np.testing.assert_allclose(summary.band[0], exact.mixture_mean() - 1.96 * sd, atol=0.05 * sd.max() + 1e-3)
    np.testing.assert_allclose(summary.band[1], exact.mixture_mean() + 1.96 * sd, atol=0.05 * sd.max() + 1e-3)
    star = predict(model, np.array([-0.25]), hyperparameters)
    metrics = summary.metrics(exact.mixture_mean(), 0.0)
    assert metrics["predictive_mean_at_x_star"] == pytest.approx(star.mixture_mean()[0], abs=0.02)
    assert metrics["predictive_sd_at_x_star"] == pytest.approx(np.sqrt(star.mixture_variance()[0]), rel=0.02)
    assert metrics["band_coverage_of_true_f"] == 1.0  # the mean always lies inside its own band
