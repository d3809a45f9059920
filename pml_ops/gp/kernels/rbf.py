"""The RBF (squared exponential) kernel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pml_ops.gp.kernels.kernel import BaseKernel, matrix

if TYPE_CHECKING:
    import torch

    from pml_ops.gp.kernels.kernel import Values


@dataclass(frozen=True)
class RBF(BaseKernel):
    """k(x, z) = variance exp(-(x - z)^2 / (2 lengthscale^2))."""

    name = "rbf"
    kinds = ("variance", "lengthscale")

    def base_covariance(self, difference: torch.Tensor, values: Values) -> torch.Tensor:
        scaled = difference / matrix(values["lengthscale"])
        return matrix(values["variance"]) * (-0.5 * scaled**2).exp()
