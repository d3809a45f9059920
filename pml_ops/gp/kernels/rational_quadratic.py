"""The rational quadratic kernel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pml_ops.gp.kernels.kernel import BaseKernel, matrix

if TYPE_CHECKING:
    import torch

    from pml_ops.gp.kernels.kernel import Values


@dataclass(frozen=True)
class RationalQuadratic(BaseKernel):
    """k(x, z) = variance (1 + (x - z)^2 / (2 alpha lengthscale^2))^-alpha: a scale mixture of
    RBF kernels (Pyro's `RationalQuadratic`, whose alpha is `scale_mixture`)."""

    name = "rational_quadratic"
    kinds = ("variance", "lengthscale", "alpha")

    def base_covariance(self, difference: torch.Tensor, values: Values) -> torch.Tensor:
        alpha = matrix(values["alpha"])
        r2 = (difference / matrix(values["lengthscale"])) ** 2
        return matrix(values["variance"]) * (1.0 + (0.5 / alpha) * r2).pow(-alpha)
