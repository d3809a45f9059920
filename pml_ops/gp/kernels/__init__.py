"""GP kernels as objects, one per module in the spirit of `pyro.contrib.gp.kernels`: `rbf`,
`matern12`, `matern32`, `matern52`, `rational_quadratic`, `periodic`, and sums and products of
them (`kernel`: `a + b`, `a * b`). `registry.parse_kernel` builds one from params.yaml's text."""

from pml_ops.gp.kernels.kernel import BaseKernel, Hyperparameter, Kernel, Product, Sum
from pml_ops.gp.kernels.matern12 import Matern12
from pml_ops.gp.kernels.matern32 import Matern32
from pml_ops.gp.kernels.matern52 import Matern52
from pml_ops.gp.kernels.periodic import Periodic
from pml_ops.gp.kernels.rational_quadratic import RationalQuadratic
from pml_ops.gp.kernels.rbf import RBF
from pml_ops.gp.kernels.registry import KERNELS, build_kernel, parse_kernel

__all__ = [
    "KERNELS",
    "RBF",
    "BaseKernel",
    "Hyperparameter",
    "Kernel",
    "Matern12",
    "Matern32",
    "Matern52",
    "Periodic",
    "Product",
    "RationalQuadratic",
    "Sum",
    "build_kernel",
    "parse_kernel",
]
