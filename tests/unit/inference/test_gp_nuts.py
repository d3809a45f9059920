"""NUTS against independent references: a quadrature posterior on a dense grid, a Gaussian's
closed form, Stan's warm-up schedule, and Pyro's NUTS on the same target (by distribution)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from pml_ops.gp.model import GPModel, LogNormalPrior, log_joint_and_grad
from pml_ops.inference.nuts import (
    NUTSSettings,
    adaptation_windows,
    resolve_processes,
    run_chain,
    sample_posterior,
)
from tests.helpers.gp_reference import GPPotential


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

    # no warm-up: no adaptation, so the step size handed in is the one used; the metric handed
    # on is the Stan-regularised variance of this run's own (log-scale) draws
    handed = type(cold.adaptation)(cold.adaptation.last, (0.123,), (np.array([0.3, 0.7]),))
    fixed = sample_posterior(model, NUTSSettings(1, 0, 5, 4, 1, 0.8, 8, False, 2.0), warm_start=handed)
    assert fixed.adaptation.step_size == (0.123,)
    logs = np.log(np.stack([fixed.flat("variance"), fixed.flat("lengthscale")], axis=1))
    np.testing.assert_allclose(
        fixed.adaptation.inverse_mass_matrix[0], 5 / 10 * logs.var(0, ddof=1) + 1e-3 * 5 / 10
    )
    with pytest.raises(ValueError, match="chains"):
        sample_posterior(model, NUTSSettings(2, 0, 5, 4, 1, 0.8, 8, False, 2.0), warm_start=handed)


def test_warm_up_schedule_is_stans():
    # Stan's defaults at 1000 warm-up steps: buffers 75 / 50, slow windows 25, 50, 100, 200, 500
    assert adaptation_windows(1000) == [
        (0, 75),
        (75, 100),
        (100, 150),
        (150, 250),
        (250, 450),
        (450, 950),
        (950, 1000),
    ]
    assert adaptation_windows(100) == [(0, 15), (15, 90), (90, 100)]  # 15% / 75% / 10%
    assert adaptation_windows(10) == [(0, 10)]


@pytest.mark.parametrize("full_mass", [False, True])
def test_correlated_gaussian_moments_and_adapted_metric(full_mass):
    """A 2-D Gaussian with very different scales and correlation 0.9: draws match its mean and
    covariance, and the adapted metric approaches the covariance (diagonal or dense)."""
    cov = np.array([[4.0, 0.9 * 2.0 * 0.1], [0.9 * 2.0 * 0.1, 0.01]])
    precision, mean = np.linalg.inv(cov), np.array([1.0, -2.0])

    def log_density(q):
        d = q - mean
        return -0.5 * float(d @ precision @ d), -precision @ d

    chain = run_chain(log_density, np.zeros(2), 500, 4000, np.random.default_rng(1), full_mass=full_mass)
    assert chain.draws.shape == (4000, 2) and not chain.diverging.any()
    sd = np.sqrt(np.diag(cov))
    for i in range(2):
        assert chain.draws[:, i].mean() == pytest.approx(mean[i], abs=4 * sd[i] / np.sqrt(400))
    np.testing.assert_allclose(np.corrcoef(chain.draws.T)[0, 1], 0.9, atol=0.03)
    np.testing.assert_allclose(chain.draws.std(0), sd, rtol=0.1)
    # the warm-up's last window has 75 draws: its estimate is within a factor ~1.5
    np.testing.assert_allclose(chain.inverse_mass, cov if full_mass else np.diag(cov), rtol=0.5)


def test_a_wall_is_never_crossed_and_counts_as_divergent():
    """Outside x < 0.5 the density is zero (log -inf): no draw lands there, and the leapfrog steps
    that hit the wall are reported as divergent transitions."""

    def log_density(q):
        if q[0] >= 0.5:
            return -np.inf, np.zeros(2)
        return -0.5 * float(q @ q), -q

    chain = run_chain(log_density, np.zeros(2), 200, 2000, np.random.default_rng(0))
    assert (chain.draws[:, 0] < 0.5).all()
    assert chain.diverging.any()
    with pytest.raises(ValueError, match="not finite at the initial point"):
        run_chain(log_density, np.array([1.0, 0.0]), 10, 10, np.random.default_rng(0))


def test_draws_match_pyro_nuts_on_the_same_target():
    """Pyro's NUTS (the stage's previous sampler) on the same potential: two-sample KS of the
    log-lengthscale draws stays below the 1% critical value at the chains' effective sizes."""
    import torch
    from pyro.infer.mcmc import MCMC, NUTS

    x = np.linspace(-1, 1, 6)
    model = GPModel(x, np.sin(2 * x), 1e-2, LogNormalPrior(0.0, 1.0), LogNormalPrior(0.0, 1.0))
    ours = sample_posterior(model, NUTSSettings(2, 100, 600, 5, 1, 0.8, 8, False, 2.0))
    torch.manual_seed(5)
    mcmc = MCMC(
        NUTS(potential_fn=GPPotential(model)),
        num_samples=1200,
        warmup_steps=100,
        initial_params={
            "log_variance": torch.tensor(0.0, dtype=torch.float64),
            "log_lengthscale": torch.tensor(0.0, dtype=torch.float64),
        },
        disable_progbar=True,
    )
    mcmc.run()
    pyro_draws = mcmc.get_samples()
    for name, site in (("variance", "log_variance"), ("lengthscale", "log_lengthscale")):
        a, b = np.log(ours.flat(name)), pyro_draws[site].numpy()
        # both samplers give about one effective draw per 3 draws here: n_eff ~ 400 each
        critical = 1.63 * np.sqrt(2 / 400)
        assert stats.ks_2samp(a, b).statistic < critical, name


def test_log_joint_is_minus_infinity_off_the_domain():
    x = np.linspace(-1, 1, 4)
    model = GPModel(x, np.cos(x), 1e-2, LogNormalPrior(0.0, 1.0), LogNormalPrior(0.0, 1.0))
    for u in ([800.0, 0.0], [0.0, -400.0], [np.nan, 0.0]):
        value, grad = log_joint_and_grad(model, np.array(u))
        assert value == -np.inf and np.all(grad == 0)
