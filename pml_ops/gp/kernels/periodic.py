"""The periodic kernel."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pml_ops.gp.kernels.kernel import BaseKernel, matrix

if TYPE_CHECKING:
    import torch

    from pml_ops.gp.kernels.kernel import Values


@dataclass(frozen=True)
class Periodic(BaseKernel):
    """k(x, z) = variance exp(-2 sin^2(pi (x - z) / period) / lengthscale^2), Pyro's `Periodic`
    (MacKay's form)."""

    name = "periodic"
    kinds = ("variance", "lengthscale", "period")

    def base_covariance(self, difference: torch.Tensor, values: Values) -> torch.Tensor:
        scaled_sin = (math.pi * difference / matrix(values["period"])).sin() / matrix(values["lengthscale"])
        return matrix(values["variance"]) * (-2.0 * scaled_sin**2).exp()
