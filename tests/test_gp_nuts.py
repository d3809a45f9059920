"""NUTS recovers a posterior computed independently by quadrature on a dense grid."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from pml_ops.gp.model import GPModel, LogNormalPrior
from pml_ops.gp.nuts import NUTSSettings, resolve_processes, sample_posterior


def grid_posterior(model: GPModel, log_v: np.ndarray, log_l: np.ndarray) -> np.ndarray:
    """Normalised posterior weights of (log variance, log lengthscale) on a grid, from scipy."""
    weights = np.empty((len(log_v), len(log_l)))
    diff2 = np.subtract.outer(model.x, model.x) ** 2
    for i, a in enumerate(log_v):
        for j, b in enumerate(log_l):
            cov = np.exp(a) * np.exp(-0.5 * diff2 / np.exp(2 * b)) + model.noise * np.eye(len(model.x))
            weights[i, j] = (
                stats.multivariate_normal(np.zeros(len(model.x)), cov).logpdf(model.y)
                + stats.norm(model.variance_prior.loc, model.variance_prior.scale).logpdf(a)
                + stats.norm(model.lengthscale_prior.loc, model.lengthscale_prior.scale).logpdf(b)
            )
    weights = np.exp(weights - weights.max())
    return weights / weights.sum()


def test_nuts_recovers_the_quadrature_posterior():
    # Smooth data with a well-identified posterior: a small, computable reference case.
    x = np.linspace(-1, 1, 6)
    model = GPModel(x, np.sin(2 * x), 1e-2, LogNormalPrior(0.0, 1.0), LogNormalPrior(0.0, 1.0))
    log_v, log_l = np.linspace(-4, 5, 91), np.linspace(-4, 3, 71)
    weights = grid_posterior(model, log_v, log_l)
    mean_v, mean_l = weights.sum(1) @ log_v, weights.sum(0) @ log_l
    sd_v = np.sqrt(weights.sum(1) @ (log_v - mean_v) ** 2)
    sd_l = np.sqrt(weights.sum(0) @ (log_l - mean_l) ** 2)

    settings = NUTSSettings(2, 100, 400, 3, 1, 0.8, 8, False, 2.0)
    posterior = sample_posterior(model, settings)
    assert posterior.samples["variance"].shape == (2, 400) and posterior.diverging.shape == (2, 400)
    draws_v, draws_l = np.log(posterior.flat("variance")), np.log(posterior.flat("lengthscale"))
    # tolerance: ~4 Monte Carlo standard errors at an effective sample size of ~150
    assert draws_v.mean() == pytest.approx(mean_v, abs=4 * sd_v / np.sqrt(150))
    assert draws_l.mean() == pytest.approx(mean_l, abs=4 * sd_l / np.sqrt(150))
    assert draws_v.std() == pytest.approx(sd_v, rel=0.2)
    assert draws_l.std() == pytest.approx(sd_l, rel=0.2)


def test_same_seed_same_chains_and_auto_processes():
    x = np.linspace(-1, 1, 4)
    model = GPModel(x, np.cos(x), 1e-2, LogNormalPrior(0.0, 1.0), LogNormalPrior(0.0, 1.0))
    settings = NUTSSettings(1, 20, 15, 7, 1, 0.8, 6, False, 2.0)
    first, second = sample_posterior(model, settings), sample_posterior(model, settings)
    np.testing.assert_array_equal(first.samples["lengthscale"], second.samples["lengthscale"])
    assert resolve_processes(3, 2) == 2 and resolve_processes(1, 4) == 1
    assert 1 <= resolve_processes("auto", 4) <= 4


def test_warm_start_recovers_the_quadrature_posterior_and_keeps_the_mass_matrix():
    x = np.linspace(-1, 1, 6)
    model = GPModel(x, np.sin(2 * x), 1e-2, LogNormalPrior(0.0, 1.0), LogNormalPrior(0.0, 1.0))
    log_v, log_l = np.linspace(-4, 5, 91), np.linspace(-4, 3, 71)
    weights = grid_posterior(model, log_v, log_l)
    mean_l = weights.sum(0) @ log_l
    sd_l = np.sqrt(weights.sum(0) @ (log_l - mean_l) ** 2)

    cold = sample_posterior(model, NUTSSettings(1, 100, 20, 3, 1, 0.8, 8, False, 2.0))
    assert cold.adaptation.last.shape == (1, 2) and len(cold.adaptation.step_size) == 1
    # short warm-up from the previous state, step size and metric: still the right posterior
    warm = sample_posterior(
        model, NUTSSettings(1, 20, 600, 4, 1, 0.8, 8, False, 2.0), warm_start=cold.adaptation
    )
    draws_l = np.log(warm.flat("lengthscale"))
    assert draws_l.mean() == pytest.approx(mean_l, abs=4 * sd_l / np.sqrt(150))
    assert draws_l.std() == pytest.approx(sd_l, rel=0.25)

    # no warm-up: no adaptation window, so the metric handed in is the one used and returned
    metric = {sites: np.array([0.3, 0.7]) for sites in cold.adaptation.inverse_mass_matrix[0]}
    handed = type(cold.adaptation)(cold.adaptation.last, cold.adaptation.step_size, (metric,))
    fixed = sample_posterior(model, NUTSSettings(1, 0, 5, 4, 1, 0.8, 8, False, 2.0), warm_start=handed)
    for sites, value in fixed.adaptation.inverse_mass_matrix[0].items():
        np.testing.assert_allclose(value, metric[sites])
    with pytest.raises(ValueError, match="chains"):
        sample_posterior(model, NUTSSettings(2, 0, 5, 4, 1, 0.8, 8, False, 2.0), warm_start=handed)
