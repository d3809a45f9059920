"""Closed-form GP posterior predictive of the latent function, batched over hyperparameter
samples, and its mixture over the hyperparameter posterior."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from pml_ops.gp.model import GPModel

DTYPE = torch.float64
Hyperparameters = Mapping[str, np.ndarray | float]  # each of the model's parameter_names -> (S,) or a number


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


def _as_tensor(a: np.ndarray | float) -> torch.Tensor:
    return torch.as_tensor(np.atleast_1d(np.asarray(a, dtype=float)), dtype=DTYPE)


def _values(model: GPModel, hyperparameters: Hyperparameters) -> dict[str, torch.Tensor]:
    """The kernel's hyperparameters as (S,) tensors, in its order; a missing one is an error."""
    missing = [name for name in model.parameter_names if name not in hyperparameters]
    if missing:
        raise KeyError(f"kernel {model.kernel}: no values for {missing}")
    return {name: _as_tensor(hyperparameters[name]) for name in model.parameter_names}


def _conditional(
    model: GPModel, xs: torch.Tensor, values: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The GP conditional at `xs` for each hyperparameter sample, with L L^T = K + noise I:
    the whitened cross-covariance W = L^-1 k(x, xs), (S, n, m), and the mean W^T L^-1 y, (S, m)."""
    x, y = model.tensors()
    cov = model.kernel.covariance(x, x, values) + model.noise * torch.eye(len(x), dtype=DTYPE)
    # L^-1 of the (S, n, n) factors once, then plain batched matmuls: torch's batched
    # solve_triangular with many right-hand sides is ~20x slower on CPU for these sizes.
    chol_inverse = torch.linalg.inv(torch.linalg.cholesky(cov))
    whitened = chol_inverse @ model.kernel.covariance(x, xs, values)
    return whitened, (whitened * (chol_inverse @ y[:, None])).sum(-2)


def predict(model: GPModel, x_new: np.ndarray, hyperparameters: Hyperparameters) -> Predictive:
    """Posterior predictive of the noise-free f at `x_new` for each hyperparameter sample (a
    value per name of `model.parameter_names`, each (S,)):
    mean = k*^T (K + s I)^-1 y, var = k** - k*^T (K + s I)^-1 k*."""
    xs, values = _as_tensor(x_new), _values(model, hyperparameters)
    with torch.no_grad():
        whitened, mean = _conditional(model, xs, values)
        var = (model.kernel.diagonal(xs, values) - (whitened**2).sum(-2)).clamp_min(0.0)
    return Predictive(mean.numpy(), var.numpy())


def sample_paths(
    model: GPModel,
    x_new: np.ndarray,
    hyperparameters: Mapping[str, float],
    rng: np.random.Generator,
    jitter: float = 1e-8,
) -> np.ndarray:
    """One joint posterior draw of f over all of `x_new` at fixed hyperparameters (one number
    per name; for Thompson sampling). `jitter` (relative to the prior variance of f) keeps the
    Cholesky of a dense grid stable."""
    xs, values = _as_tensor(x_new), _values(model, hyperparameters)
    with torch.no_grad():
        whitened, mean = _conditional(model, xs, values)
        cov = model.kernel.covariance(xs, xs, values)[0] - whitened[0].T @ whitened[0]
        scale = float(model.kernel.diagonal(xs, values)[0].max())
        cov = cov + jitter * scale * torch.eye(len(xs), dtype=DTYPE)
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
    hyperparameters: Hyperparameters,
    rng: np.random.Generator,
    draws_per_sample: int,
) -> PredictiveSummary:
    """Mixture over hyperparameter draws (each name -> (S,)): the grid's mean and 2.5/97.5%
    quantiles of f, and draws of f(x*)."""
    on_grid = predict(model, grid, hyperparameters)
    grid_draws = on_grid.draws(rng, draws_per_sample)
    band = (np.quantile(grid_draws, 0.025, axis=0), np.quantile(grid_draws, 0.975, axis=0))
    star_draws = predict(model, np.array([x_star]), hyperparameters).draws(rng, draws_per_sample)[:, 0]
    return PredictiveSummary(grid, on_grid.mixture_mean(), band, star_draws)
