"""The GP model: RBF kernel, exact log marginal likelihood and the NUTS log density over the
unconstrained (log) hyperparameters, plus the plain `pyro.contrib.gp` model it must agree with.

With log-normal priors, the prior density of ``u = log(theta)`` *including the Jacobian of
exp* is exactly Normal(loc, scale); hence the potential below equals the one Pyro derives for
the plain model (tested), so speed comparisons between the two are like for like.

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
UNCONSTRAINED = {"variance": "log_variance", "lengthscale": "log_lengthscale"}
PLAIN_SITES = {"variance": "kernel.variance", "lengthscale": "kernel.lengthscale"}
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


def log_marginal_likelihood(
    x: torch.Tensor, y: torch.Tensor, variance: torch.Tensor, lengthscale: torch.Tensor, noise: float
) -> torch.Tensor:
    """log N(y | 0, K + noise I), batched over the hyperparameters' leading shape."""
    import torch  # deferred: ~1.1 s at import; see the module docstring

    n = x.shape[0]
    cov = rbf(x, x, variance, lengthscale) + noise * torch.eye(n, dtype=x.dtype)
    chol = torch.linalg.cholesky(cov)
    white = torch.linalg.solve_triangular(chol, y.expand(*chol.shape[:-1])[..., None], upper=False)
    log_det = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
    return -0.5 * (white[..., 0] ** 2).sum(-1) - 0.5 * log_det - 0.5 * n * math.log(2 * math.pi)


def _normal_log_prob(value: torch.Tensor, prior: LogNormalPrior) -> torch.Tensor:
    z = (value - prior.loc) / prior.scale
    return -0.5 * z**2 - math.log(prior.scale) - 0.5 * math.log(2 * math.pi)


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


@functools.cache
def _negative_log_joint():
    """A torch autograd Function around the numpy value and hand-written gradient, so Pyro's
    `potential_grad` can call `backward` on it (built on first use: torch loads lazily)."""
    import torch  # deferred: ~1.1 s at import; see the module docstring

    class NegativeLogJoint(torch.autograd.Function):
        @staticmethod
        def forward(ctx, u: torch.Tensor, model: GPModel) -> torch.Tensor:
            value, grad = log_joint_and_grad(model, u.detach().numpy())
            ctx.save_for_backward(torch.from_numpy(-grad))
            return u.new_tensor(-value)

        @staticmethod
        def backward(ctx, grad_output: torch.Tensor):
            (grad,) = ctx.saved_tensors
            return grad_output * grad, None

    return NegativeLogJoint


class GPPotential:
    """Potential energy (negative log joint density) over ``log_variance``, ``log_lengthscale``
    in Pyro's form (a dict of tensors in, a tensor out), for Pyro's own NUTS (the benchmark's
    reference). `log_joint` is the same density in batched torch (grids, predictive checks)."""

    def __init__(self, model: GPModel):
        self.model = model

    def log_joint(self, log_variance: torch.Tensor, log_lengthscale: torch.Tensor) -> torch.Tensor:
        x, y = self.model.tensors()
        return (
            log_marginal_likelihood(x, y, log_variance.exp(), log_lengthscale.exp(), self.model.noise)
            + _normal_log_prob(log_variance, self.model.variance_prior)
            + _normal_log_prob(log_lengthscale, self.model.lengthscale_prior)
        )

    def __call__(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        import torch  # deferred: ~1.1 s at import; see the module docstring

        u = torch.stack([params[UNCONSTRAINED[name]] for name in HYPERPARAMETERS])
        return _negative_log_joint().apply(u, self.model)


def plain_gp_regression(model: GPModel):
    """The study's model written the ordinary way: `GPRegression` with an RBF kernel whose
    hyperparameters carry `PyroSample` log-normal priors (sites ``kernel.variance`` and
    ``kernel.lengthscale``). ``jitter=0`` so that its density is exactly the model's."""
    # deferred: Pyro, ~1.5 s at import (torch: see the module docstring); only this reference model,
    # which the tests check against, needs it
    import pyro.contrib.gp as gp
    import pyro.distributions as dist
    import torch
    from pyro.nn import PyroSample

    x, y = model.tensors()
    kernel = gp.kernels.RBF(input_dim=1)
    for name in HYPERPARAMETERS:
        prior = model.prior(name)
        loc = torch.tensor(prior.loc, dtype=torch.float64)
        scale = torch.tensor(prior.scale, dtype=torch.float64)
        setattr(kernel, name, PyroSample(dist.LogNormal(loc, scale)))
    regression = gp.models.GPRegression(
        x, y, kernel, noise=torch.tensor(model.noise, dtype=torch.float64), jitter=0.0
    )
    return regression.double()
