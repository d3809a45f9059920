"""Bits/dim, dequantisation and the continuous Bernoulli, each against an independent computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from pml_ops.density.autoencoder import iwae_mc_variance, pixel_log_likelihood
from pml_ops.density.units import (
    bits_per_dim,
    continuous_bernoulli_log_likelihood,
    continuous_bernoulli_mean,
    dequantise,
    mean_and_se,
)

LOGITS = [-30.0, -5.0, -1.0, -0.02, -1e-3, 0.0, 1e-3, 0.02, 0.5, 3.0, 12.0]


@pytest.mark.parametrize("eta", LOGITS)
def test_continuous_bernoulli_normaliser_integrates_to_one(eta: float):
    """log C = log p(0 | lambda) - log(1 - lambda), against 1 / the quadrature of
    lambda^x (1 - lambda)^(1 - x)."""
    lam = 1 / (1 + math.exp(-eta))
    mass, _ = integrate.quad(lambda x: lam**x * (1 - lam) ** (1 - x), 0.0, 1.0, epsabs=1e-13, epsrel=1e-12)
    log_p0 = continuous_bernoulli_log_likelihood(
        torch.tensor([eta], dtype=torch.float64), torch.zeros(1, dtype=torch.float64)
    ).item()
    log_c = log_p0 + math.log1p(math.exp(eta))  # - log(1 - lambda) = softplus(eta)
    assert log_c == pytest.approx(-math.log(mass), abs=1e-9)


@pytest.mark.parametrize("eta", LOGITS)
def test_continuous_bernoulli_mean_against_quadrature(eta: float):
    eta_t = torch.tensor([eta], dtype=torch.float64)
    density = lambda x: math.exp(  # noqa: E731
        pixel_log_likelihood(eta_t, torch.tensor([x], dtype=torch.float64), "continuous_bernoulli").item()
    )
    mass, _ = integrate.quad(density, 0.0, 1.0, epsabs=1e-13)
    mean, _ = integrate.quad(lambda x: x * density(x), 0.0, 1.0, epsabs=1e-13)
    assert mass == pytest.approx(1.0, abs=1e-9)
    assert continuous_bernoulli_mean(eta_t).item() == pytest.approx(mean, abs=1e-7)


def test_continuous_bernoulli_matches_torch_distribution_and_has_finite_gradients():
    logits = torch.linspace(-20, 20, 101, dtype=torch.float64, requires_grad=True)
    x = torch.rand(101, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ours = pixel_log_likelihood(logits, x, "continuous_bernoulli")
    reference = torch.distributions.ContinuousBernoulli(logits=logits.detach()).log_prob(x)
    torch.testing.assert_close(ours.detach(), reference, atol=1e-6, rtol=0)
    ours.sum().backward()
    assert torch.isfinite(logits.grad).all()
    away = logits.detach().abs() > 0.1  # torch's log_prob: a Taylor series near lambda = 1/2
    expected = torch.func.grad(lambda e: torch.distributions.ContinuousBernoulli(logits=e).log_prob(x).sum())
    torch.testing.assert_close(logits.grad[away], expected(logits.detach())[away])


@pytest.mark.parametrize("decoder", ["bernoulli", "continuous_bernoulli"])
def test_float32_log_likelihood_is_float64_accurate_across_logits(decoder: str):
    """The training and scoring precision, float32, from logits 1e-8 to 80 (and x = 0, 1 and
    between) against the same formula in float64: within float32 rounding of each term."""
    magnitudes = torch.logspace(-8, math.log10(80), 200, dtype=torch.float64)
    logits = torch.cat([-magnitudes, torch.zeros(1, dtype=torch.float64), magnitudes])
    for value in (0.0, 0.3, 1.0):
        x = torch.full_like(logits, value)
        exact = pixel_log_likelihood(logits, x, decoder)
        single = pixel_log_likelihood(logits.float(), x.float(), decoder).double()
        torch.testing.assert_close(single, exact, atol=2e-6, rtol=2e-6)


def test_bernoulli_decoder_is_plain_bce():
    logits, x = torch.tensor([0.3, -2.0]), torch.tensor([0.2, 1.0])
    expected = x * torch.log(torch.sigmoid(logits)) + (1 - x) * torch.log(1 - torch.sigmoid(logits))
    torch.testing.assert_close(pixel_log_likelihood(logits, x, "bernoulli"), expected)
    wide = torch.linspace(-60, 60, 241, requires_grad=True)
    grey = torch.rand(241, generator=torch.Generator().manual_seed(1))
    ours = pixel_log_likelihood(wide, grey, "bernoulli")
    reference = -torch.nn.functional.binary_cross_entropy_with_logits(wide, grey, reduction="none")
    torch.testing.assert_close(ours, reference)
    (gradient,) = torch.autograd.grad(ours.sum(), wide)
    torch.testing.assert_close(gradient, grey - torch.sigmoid(wide.detach()))


def test_bits_per_dim_of_a_gaussian_against_scipy():
    """A Gaussian on the [0, 1] scale, scored at y = v / 256: bits/dim on the grey-level scale equal
    the negative log2-density of the same Gaussian stretched by 256, as scipy computes it."""
    rng = np.random.default_rng(0)
    dims, mean, sd = 5, rng.random(5), 0.1 + rng.random(5) * 0.2
    y = rng.random((7, dims))
    log_p_unit = stats.multivariate_normal(mean, np.diag(sd**2)).logpdf(y)
    grey = stats.multivariate_normal(mean * 256, np.diag((sd * 256) ** 2)).logpdf(y * 256)
    np.testing.assert_allclose(bits_per_dim(log_p_unit, dims), -grey / (dims * math.log(2)), rtol=1e-12)


def test_dequantisation_of_a_known_model():
    """A uniform density on [0, 1]^D has bits/dim exactly 8 for 8-bit images; the dequantised
    points stay inside each grey level's cell and depend only on the seed."""
    images = np.arange(256, dtype=np.uint8).reshape(4, 8, 8)
    y = dequantise(images, seed=3)
    k = images.reshape(4, -1).astype(np.int64)
    assert y.shape == (4, 64) and np.all(y >= k / 256) and np.all(y < (k + 1) / 256)
    np.testing.assert_array_equal(y, dequantise(images, seed=3))
    assert not np.array_equal(y, dequantise(images, seed=4))
    np.testing.assert_allclose(bits_per_dim(np.zeros(4), 64), 8.0)


def test_dequantised_discrete_likelihood_bound():
    """For a product of per-pixel densities constant on each grey-level cell, the dequantised
    log-density equals the discrete log-probability of the grey levels (the bound is tight)."""
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(256))  # P(k) for one pixel
    images = rng.choice(256, size=(50, 1, 3)).astype(np.uint8)
    y = dequantise(images, seed=0)
    # density on [0, 1]: P(k) * 256 on the cell [k/256, (k+1)/256)
    log_p_unit = np.log(probs[np.floor(y * 256).astype(int)] * 256).sum(1)
    discrete_bits = -np.log2(probs[images.reshape(50, -1)]).mean(1)
    np.testing.assert_allclose(bits_per_dim(log_p_unit, 3), discrete_bits, rtol=1e-12)


def test_mean_and_se():
    values = np.array([1.0, 2.0, 4.0, 7.0])
    mean, se = mean_and_se(values)
    assert mean == 3.5 and se == pytest.approx(stats.sem(values))
    assert mean_and_se(np.array([2.0])) == (2.0, 0.0)


def test_iwae_mc_variance_matches_replicates():
    """The delta-method variance of log mean(w) against the spread of many independent replicates."""
    gen = torch.Generator().manual_seed(0)
    k, reps = 200, 4000
    log_w = torch.randn((k, reps), generator=gen, dtype=torch.float64) * 0.7 - 3.0
    estimates = torch.logsumexp(log_w, 0) - math.log(k)
    predicted = iwae_mc_variance(log_w).mean().item()
    assert predicted == pytest.approx(estimates.var().item(), rel=0.1)
