"""Reference implementations the GP model is tested against (not part of the package): the
potential energy in Pyro's form, for Pyro's own NUTS, with the same log joint density in batched
torch, and the study's model written the ordinary `pyro.contrib.gp` way.

With log-normal priors, the prior density of ``u = log(theta)`` *including the Jacobian of
exp* is exactly Normal(loc, scale); hence `GPPotential` equals the potential Pyro derives for
`plain_gp_regression` (tests/unit/gp/test_gp_model.py), so speed comparisons between the two are
like for like (benchmarks/gp_nuts.py). Pyro comes with the `dev` extra.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

from pml_ops.gp.model import HYPERPARAMETERS, GPModel, LogNormalPrior, log_joint_and_grad

if TYPE_CHECKING:
    import torch

UNCONSTRAINED = {"variance": "log_variance", "lengthscale": "log_lengthscale"}
PLAIN_SITES = {"variance": "kernel.variance", "lengthscale": "kernel.lengthscale"}


def log_marginal_likelihood(
    x: torch.Tensor, y: torch.Tensor, variance: torch.Tensor, lengthscale: torch.Tensor, noise: float
) -> torch.Tensor:
    """log N(y | 0, K + noise I), batched over the hyperparameters' leading shape."""
    import torch

    n = x.shape[0]
    scaled = (x[:, None] - x[None, :]) / lengthscale[..., None, None]
    cov = variance[..., None, None] * (-0.5 * scaled**2).exp() + noise * torch.eye(n, dtype=x.dtype)
    chol = torch.linalg.cholesky(cov)
    white = torch.linalg.solve_triangular(chol, y.expand(*chol.shape[:-1])[..., None], upper=False)
    log_det = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
    return -0.5 * (white[..., 0] ** 2).sum(-1) - 0.5 * log_det - 0.5 * n * math.log(2 * math.pi)


def _normal_log_prob(value: torch.Tensor, prior: LogNormalPrior) -> torch.Tensor:
    z = (value - prior.loc) / prior.scale
    return -0.5 * z**2 - math.log(prior.scale) - 0.5 * math.log(2 * math.pi)


@functools.cache
def _negative_log_joint():
    """A torch autograd Function around the numpy value and hand-written gradient, so Pyro's
    `potential_grad` can call `backward` on it (built on first use: torch loads lazily)."""
    import torch

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
        import torch

        u = torch.stack([params[UNCONSTRAINED[name]] for name in HYPERPARAMETERS])
        return _negative_log_joint().apply(u, self.model)


def plain_gp_regression(model: GPModel):
    """The study's model written the ordinary way: `GPRegression` with an RBF kernel whose
    hyperparameters carry `PyroSample` log-normal priors (sites ``kernel.variance`` and
    ``kernel.lengthscale``). ``jitter=0`` so that its density is exactly the model's."""
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
