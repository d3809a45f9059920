"""The GP model: RBF kernel and the NUTS log density over the unconstrained (log)
hyperparameters, with its gradient by hand.

With log-normal priors, the prior density of ``u = log(theta)`` *including the Jacobian of
exp* is exactly Normal(loc, scale), so `log_joint_and_grad` is minus the potential Pyro derives
for the plain `pyro.contrib.gp` model. The tests check it against that model and against the same
density in batched torch (tests/helpers/gp_reference.py, which also drives Pyro's NUTS in
benchmarks/gp_nuts.py).

The sampler's hot path (`log_joint_and_grad`) is numpy and LAPACK only; torch is imported by the
functions that use it, so chain worker processes start without it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.linalg import lapack

if TYPE_CHECKING:
    import torch

HYPERPARAMETERS = ("variance", "lengthscale")
_LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class LogNormalPrior:
    loc: float
    scale: float


@dataclass(frozen=True)
class GPModel:
    """Training data, fixed noise variance and the hyperparameter priors of the study's GP."""

    x: np.ndarray
    y: np.ndarray
    noise: float
    variance_prior: LogNormalPrior
    lengthscale_prior: LogNormalPrior

    @functools.cached_property
    def squared_distances(self) -> np.ndarray:
        return (self.x[:, None] - self.x[None, :]) ** 2

    @functools.cached_property
    def noise_matrix(self) -> np.ndarray:
        return self.noise * np.eye(len(self.x))

    @functools.cached_property
    def y_and_identity(self) -> np.ndarray:
        """Right-hand sides [y, I]: one triangular solve gives A^-1 y and A^-1."""
        return np.column_stack([self.y, np.eye(len(self.y))])

    @functools.cached_property
    def log_norm(self) -> float:
        return 0.5 * len(self.y) * _LOG_2PI

    def prior(self, name: str) -> LogNormalPrior:
        return {"variance": self.variance_prior, "lengthscale": self.lengthscale_prior}[name]

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return HYPERPARAMETERS

    def log_density_and_grad(self, u: np.ndarray) -> tuple[float, np.ndarray]:
        """The NUTS target: log p(y, u) over u = (log variance, log lengthscale)."""
        return log_joint_and_grad(self, u)

    def constrain(self, draws: np.ndarray) -> dict[str, np.ndarray]:
        return {name: np.exp(draws[..., i]) for i, name in enumerate(HYPERPARAMETERS)}

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        import torch  # deferred: ~1.1 s at import; see the module docstring

        return torch.as_tensor(self.x, dtype=torch.float64), torch.as_tensor(self.y, dtype=torch.float64)


def rbf(x1: torch.Tensor, x2: torch.Tensor, variance: torch.Tensor, lengthscale: torch.Tensor):
    """RBF kernel ``v exp(-(x1 - x2)^2 / (2 l^2))`` for 1-D inputs, batched over the leading
    shape of `variance` and `lengthscale`: returns (*batch, len(x1), len(x2))."""
    variance = variance[..., None, None]
    lengthscale = lengthscale[..., None, None]
    scaled = (x1[:, None] - x2[None, :]) / lengthscale
    return variance * (-0.5 * scaled**2).exp()


def log_joint_and_grad(model: GPModel, u: np.ndarray) -> tuple[float, np.ndarray]:
    """log p(y, u) and its gradient in u = (log variance, log lengthscale), by hand in numpy:
    d/du log N(y|0,A) = 0.5 (a^T dA/du a - tr(A^-1 dA/du)) with A = K + noise I, a = A^-1 y.
    One LAPACK Cholesky (potrf) and one solve for [a, A^-1] (potrs): a few microseconds at
    n = 5, where numpy's generic wrappers cost more than the arithmetic. Returns -inf off the
    positive-definite domain."""
    log_variance, log_lengthscale = float(u[0]), float(u[1])
    if not (abs(log_variance) < 700 and abs(log_lengthscale) < 350):  # exp over/underflow
        return -math.inf, np.zeros(2)
    scaled = model.squared_distances * math.exp(-2.0 * log_lengthscale)
    kernel = math.exp(log_variance) * np.exp(-0.5 * scaled)
    chol, info = lapack.dpotrf(kernel + model.noise_matrix, lower=1, clean=0)
    if info != 0:
        return -math.inf, np.zeros(2)
    solved, info = lapack.dpotrs(chol, model.y_and_identity, lower=1)
    alpha, inverse = solved[:, 0], solved[:, 1:]
    kernel_scaled = kernel * scaled  # dA/d log lengthscale; dA/d log variance is `kernel`
    value = -0.5 * float(model.y @ alpha) - float(np.log(chol.diagonal()).sum()) - model.log_norm
    grad_variance = 0.5 * (float(alpha @ kernel @ alpha) - float(np.vdot(inverse, kernel)))
    grad_lengthscale = 0.5 * (float(alpha @ kernel_scaled @ alpha) - float(np.vdot(inverse, kernel_scaled)))
    grad = np.array([grad_variance, grad_lengthscale])
    for i, prior in enumerate((model.variance_prior, model.lengthscale_prior)):
        z = (float(u[i]) - prior.loc) / prior.scale
        value -= 0.5 * z * z + math.log(prior.scale) + 0.5 * _LOG_2PI
        grad[i] -= z / prior.scale
    return value, grad
