"""The Matérn 3/2 kernel."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pml_ops.gp.kernels.kernel import BaseKernel, matrix

if TYPE_CHECKING:
    import torch

    from pml_ops.gp.kernels.kernel import Values


@dataclass(frozen=True)
class Matern32(BaseKernel):
    """k(x, z) = variance (1 + sqrt(3) r) exp(-sqrt(3) r), r = |x - z| / lengthscale."""

    name = "matern32"
    kinds = ("variance", "lengthscale")

    def base_covariance(self, difference: torch.Tensor, values: Values) -> torch.Tensor:
        sqrt3_r = math.sqrt(3.0) * difference.abs() / matrix(values["lengthscale"])
        return matrix(values["variance"]) * (1.0 + sqrt3_r) * (-sqrt3_r).exp()
