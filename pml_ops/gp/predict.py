"""Closed-form GP posterior predictive of the latent function, batched over hyperparameter
samples, and its mixture over the hyperparameter posterior."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pml_ops.gp.model import GPModel, rbf

DTYPE = torch.float64


@dataclass(frozen=True)
class Predictive:
    """Per-sample predictive mean and variance of f, each (samples, points)."""

    mean: np.ndarray
    variance: np.ndarray

    def mixture_mean(self) -> np.ndarray:
        return self.mean.mean(0)

    def mixture_variance(self) -> np.ndarray:
        """Law of total variance over the hyperparameter samples."""
        return self.variance.mean(0) + self.mean.var(0)

    def draws(self, rng: np.random.Generator, per_sample: int = 1) -> np.ndarray:
        """Marginal draws of f at each point from the mixture: (samples * per_sample, points)."""
        noise = rng.standard_normal((per_sample, *self.mean.shape))
        return (self.mean + np.sqrt(self.variance) * noise).reshape(-1, self.mean.shape[-1])


def _as_tensors(*arrays: np.ndarray | float) -> list[torch.Tensor]:
    return [torch.as_tensor(np.atleast_1d(np.asarray(a, dtype=float)), dtype=DTYPE) for a in arrays]


def _conditional(
    model: GPModel, xs: torch.Tensor, v: torch.Tensor, ls: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The GP conditional at `xs` for each hyperparameter pair (v, ls), with L L^T = K + noise I:
    the whitened cross-covariance W = L^-1 k(x, xs), (S, n, m), and the mean W^T L^-1 y, (S, m)."""
    x, y = model.tensors()
    cov = rbf(x, x, v, ls) + model.noise * torch.eye(len(x), dtype=DTYPE)
    # L^-1 of the (S, n, n) factors once, then plain batched matmuls: torch's batched
    # solve_triangular with many right-hand sides is ~20x slower on CPU for these sizes.
    chol_inverse = torch.linalg.inv(torch.linalg.cholesky(cov))
    whitened = chol_inverse @ rbf(x, xs, v, ls)
    return whitened, (whitened * (chol_inverse @ y[:, None])).sum(-2)


def predict(model: GPModel, x_new: np.ndarray, variance: np.ndarray, lengthscale: np.ndarray) -> Predictive:
    """Posterior predictive of the noise-free f at `x_new` for each (variance, lengthscale):
    mean = k*^T (K + s I)^-1 y, var = k** - k*^T (K + s I)^-1 k*."""
    xs, v, ls = _as_tensors(x_new, variance, lengthscale)
    with torch.no_grad():
        whitened, mean = _conditional(model, xs, v, ls)
        var = (v[:, None] - (whitened**2).sum(-2)).clamp_min(0.0)
    return Predictive(mean.numpy(), var.numpy())


def sample_paths(
    model: GPModel,
    x_new: np.ndarray,
    variance: float,
    lengthscale: float,
    rng: np.random.Generator,
    jitter: float = 1e-8,
) -> np.ndarray:
    """One joint posterior draw of f over all of `x_new` at fixed hyperparameters (for
    Thompson sampling). `jitter` (relative to the variance) keeps the Cholesky of a dense grid
    stable."""
    xs, v, ls = _as_tensors(x_new, variance, lengthscale)
    with torch.no_grad():
        whitened, mean = _conditional(model, xs, v, ls)
        cov = rbf(xs, xs, v, ls)[0] - whitened[0].T @ whitened[0]
        cov = cov + jitter * variance * torch.eye(len(xs), dtype=DTYPE)
        factor, info = torch.linalg.cholesky_ex(cov)
        if int(info) != 0:  # numerically indefinite: fall back to an eigen-decomposition
            eigval, eigvec = torch.linalg.eigh(cov)
            factor = eigvec * eigval.clamp_min(0.0).sqrt()
        noise = torch.as_tensor(rng.standard_normal(len(xs)), dtype=DTYPE)
        return (mean[0] + factor @ noise).numpy()


@dataclass(frozen=True)
class PredictiveSummary:
    """The posterior predictive of f on a grid (mean, 95% band) and at one point x*."""

    grid: np.ndarray
    mean: np.ndarray
    band: tuple[np.ndarray, np.ndarray]
    star_draws: np.ndarray

    def metrics(self, truth_on_grid: np.ndarray, truth_at_star: float) -> dict[str, float]:
        """x* summaries, and the share of grid points where the true f lies inside the band."""
        inside = (truth_on_grid >= self.band[0]) & (truth_on_grid <= self.band[1])
        return {
            "predictive_mean_at_x_star": float(self.star_draws.mean()),
            "predictive_sd_at_x_star": float(self.star_draws.std()),
            "predictive_q025_at_x_star": float(np.quantile(self.star_draws, 0.025)),
            "predictive_q975_at_x_star": float(np.quantile(self.star_draws, 0.975)),
            "true_f_at_x_star": truth_at_star,
            "band_coverage_of_true_f": float(np.mean(inside)),
        }


def summarize_predictive(
    model: GPModel,
    grid: np.ndarray,
    x_star: float,
    variance: np.ndarray,
    lengthscale: np.ndarray,
    rng: np.random.Generator,
    draws_per_sample: int,
) -> PredictiveSummary:
    """Mixture over hyperparameter draws: the grid's mean and 2.5/97.5% quantiles of f, and draws
    of f(x*)."""
    on_grid = predict(model, grid, variance, lengthscale)
    grid_draws = on_grid.draws(rng, draws_per_sample)
    band = (np.quantile(grid_draws, 0.025, axis=0), np.quantile(grid_draws, 0.975, axis=0))
    star_draws = predict(model, np.array([x_star]), variance, lengthscale).draws(rng, draws_per_sample)[:, 0]
    return PredictiveSummary(grid, on_grid.mixture_mean(), band, star_draws)
