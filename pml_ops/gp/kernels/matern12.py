"""The Matérn 1/2 (exponential) kernel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pml_ops.gp.kernels.kernel import BaseKernel, matrix

if TYPE_CHECKING:
    import torch

    from pml_ops.gp.kernels.kernel import Values


@dataclass(frozen=True)
class Matern12(BaseKernel):
    """k(x, z) = variance exp(-r), r = |x - z| / lengthscale (Pyro's `Exponential`).

    r is the absolute difference, not the square root of a squared distance, so the gradient at
    r = 0 (the diagonal) is exact without the small constant Pyro adds under the root."""

    name = "matern12"
    kinds = ("variance", "lengthscale")

    def base_covariance(self, difference: torch.Tensor, values: Values) -> torch.Tensor:
        r = difference.abs() / matrix(values["lengthscale"])
        return matrix(values["variance"]) * (-r).exp()
