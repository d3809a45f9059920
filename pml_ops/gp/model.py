"""The GP model: RBF kernel, exact log marginal likelihood and the NUTS potential over the
unconstrained (log) hyperparameters, plus the plain `pyro.contrib.gp` model it must agree with.

With log-normal priors, the prior density of ``u = log(theta)`` *including the Jacobian of
exp* is exactly Normal(loc, scale); hence the potential below equals the one Pyro derives for
the plain model (tested), so speed comparisons between the two are like for like.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

HYPERPARAMETERS = ("variance", "lengthscale")
UNCONSTRAINED = {"variance": "log_variance", "lengthscale": "log_lengthscale"}
PLAIN_SITES = {"variance": "kernel.variance", "lengthscale": "kernel.lengthscale"}
DTYPE = torch.float64


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

    def prior(self, name: str) -> LogNormalPrior:
        return {"variance": self.variance_prior, "lengthscale": self.lengthscale_prior}[name]

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.as_tensor(self.x, dtype=DTYPE), torch.as_tensor(self.y, dtype=DTYPE)


def rbf(x1: torch.Tensor, x2: torch.Tensor, variance: torch.Tensor, lengthscale: torch.Tensor):
    """RBF kernel ``v exp(-(x1 - x2)^2 / (2 l^2))`` for 1-D inputs, batched over the leading
    shape of `variance` and `lengthscale`: returns (*batch, len(x1), len(x2))."""
    variance = variance[..., None, None]
    lengthscale = lengthscale[..., None, None]
    scaled = (x1[:, None] - x2[None, :]) / lengthscale
    return variance * torch.exp(-0.5 * scaled**2)


def log_marginal_likelihood(
    x: torch.Tensor, y: torch.Tensor, variance: torch.Tensor, lengthscale: torch.Tensor, noise: float
) -> torch.Tensor:
    """log N(y | 0, K + noise I), batched over the hyperparameters' leading shape."""
    n = x.shape[0]
    cov = rbf(x, x, variance, lengthscale) + noise * torch.eye(n, dtype=x.dtype)
    chol = torch.linalg.cholesky(cov)
    white = torch.linalg.solve_triangular(chol, y.expand(*chol.shape[:-1])[..., None], upper=False)
    log_det = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
    return -0.5 * (white[..., 0] ** 2).sum(-1) - 0.5 * log_det - 0.5 * n * math.log(2 * math.pi)


def _normal_log_prob(value: torch.Tensor, prior: LogNormalPrior) -> torch.Tensor:
    z = (value - prior.loc) / prior.scale
    return -0.5 * z**2 - math.log(prior.scale) - 0.5 * math.log(2 * math.pi)


def _log_joint_and_grad(model: GPModel, u: np.ndarray) -> tuple[float, np.ndarray]:
    """log p(y, u) and its gradient in u = (log variance, log lengthscale), by hand in numpy:
    d/du log N(y|0,K) = 0.5 tr((a a^T - K^-1) dK/du) with a = K^-1 y. Returns -inf off the
    positive-definite domain."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        variance, lengthscale = np.exp(u)
        sq = (model.x[:, None] - model.x[None, :]) ** 2 / lengthscale**2
        kernel = variance * np.exp(-0.5 * sq)
    n = len(model.x)
    if not np.all(np.isfinite(kernel)):
        return -np.inf, np.zeros(2)
    try:
        chol = np.linalg.cholesky(kernel + model.noise * np.eye(n))
    except np.linalg.LinAlgError:
        return -np.inf, np.zeros(2)
    chol_inverse = np.linalg.inv(chol)
    inverse = chol_inverse.T @ chol_inverse
    alpha = inverse @ model.y
    outer = np.outer(alpha, alpha) - inverse
    grad = np.array([0.5 * np.sum(outer * kernel), 0.5 * np.sum(outer * kernel * sq)])
    value = -0.5 * model.y @ alpha - np.log(np.diag(chol)).sum() - 0.5 * n * math.log(2 * math.pi)
    for i, name in enumerate(HYPERPARAMETERS):
        prior = model.prior(name)
        z = (u[i] - prior.loc) / prior.scale
        value += -0.5 * z**2 - math.log(prior.scale) - 0.5 * math.log(2 * math.pi)
        grad[i] -= z / prior.scale
    return float(value), grad


class _NegativeLogJoint(torch.autograd.Function):
    """Wraps the numpy value and hand-written gradient so Pyro's `potential_grad` can call
    `backward` on it: one 5x5 Cholesky per leapfrog step, no autograd graph."""

    @staticmethod
    def forward(ctx, u: torch.Tensor, model: GPModel) -> torch.Tensor:
        value, grad = _log_joint_and_grad(model, u.detach().numpy())
        ctx.save_for_backward(torch.from_numpy(-grad))
        return u.new_tensor(-value)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (grad,) = ctx.saved_tensors
        return grad_output * grad, None


class GPPotential:
    """Potential energy (negative log joint density) over ``log_variance``, ``log_lengthscale``,
    the function NUTS calls at every leapfrog step. Picklable, so chains can run in worker
    processes. `log_joint` is the same density in batched torch (grids, predictive checks)."""

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
        u = torch.stack([params[UNCONSTRAINED[name]] for name in HYPERPARAMETERS])
        return _NegativeLogJoint.apply(u, self.model)


def plain_gp_regression(model: GPModel):
    """The study's model written the ordinary way: `GPRegression` with an RBF kernel whose
    hyperparameters carry `PyroSample` log-normal priors (sites ``kernel.variance`` and
    ``kernel.lengthscale``). ``jitter=0`` so that its density is exactly the model's."""
    import pyro.contrib.gp as gp
    import pyro.distributions as dist
    from pyro.nn import PyroSample

    x, y = model.tensors()
    kernel = gp.kernels.RBF(input_dim=1)
    for name in HYPERPARAMETERS:
        prior = model.prior(name)
        loc, scale = torch.tensor(prior.loc, dtype=DTYPE), torch.tensor(prior.scale, dtype=DTYPE)
        setattr(kernel, name, PyroSample(dist.LogNormal(loc, scale)))
    regression = gp.models.GPRegression(
        x, y, kernel, noise=torch.tensor(model.noise, dtype=DTYPE), jitter=0.0
    )
    return regression.double()
