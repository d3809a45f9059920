"""The Matérn 5/2 kernel."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pml_ops.gp.kernels.kernel import BaseKernel, matrix

if TYPE_CHECKING:
    import torch

    from pml_ops.gp.kernels.kernel import Values


@dataclass(frozen=True)
class Matern52(BaseKernel):
    """k(x, z) = variance (1 + sqrt(5) r + 5 r^2 / 3) exp(-sqrt(5) r), r = |x - z| / lengthscale."""

    name = "matern52"
    kinds = ("variance", "lengthscale")

    def base_covariance(self, difference: torch.Tensor, values: Values) -> torch.Tensor:
        r = difference.abs() / matrix(values["lengthscale"])
        sqrt5_r = math.sqrt(5.0) * r
        return matrix(values["variance"]) * (1.0 + sqrt5_r + (5.0 / 3.0) * r**2) * (-sqrt5_r).exp()
