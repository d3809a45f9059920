"""params.yaml's kernel expressions (`pml_ops.config.kernel_expression`) -> kernel objects."""

from __future__ import annotations

from pml_ops.config.kernel_expression import KernelName, KernelSum, KernelTree, parse_kernel_expression
from pml_ops.gp.kernels.kernel import BaseKernel, Kernel, Product, Sum
from pml_ops.gp.kernels.matern12 import Matern12
from pml_ops.gp.kernels.matern32 import Matern32
from pml_ops.gp.kernels.matern52 import Matern52
from pml_ops.gp.kernels.periodic import Periodic
from pml_ops.gp.kernels.rational_quadratic import RationalQuadratic
from pml_ops.gp.kernels.rbf import RBF

KERNELS: dict[str, type[BaseKernel]] = {
    cls.name: cls for cls in (RBF, Matern12, Matern32, Matern52, RationalQuadratic, Periodic)
}


def build_kernel(tree: KernelTree) -> Kernel:
    if isinstance(tree, KernelName):
        return KERNELS[tree.name]()
    if isinstance(tree, KernelSum):
        return Sum(tuple(build_kernel(term) for term in tree.terms))
    return Product(tuple(build_kernel(factor) for factor in tree.factors))


def parse_kernel(text: str, key: str = "kernel") -> Kernel:
    """``"rbf + periodic"`` -> ``Sum((RBF(), Periodic()))``; ConfigError naming `key` if the text
    is not a kernel expression."""
    return build_kernel(parse_kernel_expression(text, key))
