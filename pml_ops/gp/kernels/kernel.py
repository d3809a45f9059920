"""What every kernel is: `Kernel` (hyperparameter names, covariance and its diagonal in torch,
batched over the hyperparameters' leading shape), `BaseKernel` (one named kernel of params.yaml,
one per module beside this one) and the combinations `Sum` and `Product`, as in
`pyro.contrib.gp.kernels`.

Unlike Pyro's kernels, ours hold no parameters: the hyperparameters come in at each call as a
mapping of positive tensors, each of shape (*batch,) (NUTS draws, a grid), and the covariance is
(*batch, len(x1), len(x2)). The inputs are 1-D tensors. Value and gradient come from this one
definition through torch autograd (`pml_ops.gp.model`). Torch is not imported here: the
kernels use tensor methods only, so a process that never evaluates one never loads torch.

Names: a lone kernel's hyperparameters keep their plain names (``variance``, ``lengthscale``,
``alpha``, ``period``); in a sum or product each is prefixed by its kernel's name, a kernel that
appears again by its name and occurrence (``rbf.variance``, ``rbf_2.variance``,
``periodic.period``), left to right. Each hyperparameter also has a kind (the plain name), which
picks its prior.
"""

from __future__ import annotations

import functools
import operator
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    import torch

    Values = Mapping[str, torch.Tensor]
    LeafEvaluation = Callable[["BaseKernel", Mapping[str, torch.Tensor]], torch.Tensor]


@dataclass(frozen=True)
class Hyperparameter:
    name: str  # in the posterior, ArviZ, metrics and figures: `lengthscale`, `periodic.lengthscale`
    kind: str  # variance, lengthscale, alpha or period: which prior it takes


class Kernel(ABC):
    """A covariance function of 1-D inputs with positive hyperparameters."""

    @abstractmethod
    def leaves(self) -> tuple[BaseKernel, ...]:
        """The named kernels this one is built of, left to right."""

    @abstractmethod
    def _evaluate(self, per_leaf: Iterator[Values], evaluate: LeafEvaluation) -> torch.Tensor:
        """Combine `evaluate(leaf, its hyperparameters)` over the leaves, consuming `per_leaf` in
        the leaves' order."""

    @functools.cached_property
    def hyperparameters(self) -> tuple[Hyperparameter, ...]:
        if isinstance(self, BaseKernel):
            return tuple(Hyperparameter(kind, kind) for kind in self.kinds)
        leaves = self.leaves()
        labels = occurrence_labels([leaf.name for leaf in leaves])
        return tuple(
            Hyperparameter(f"{label}.{kind}", kind)
            for label, leaf in zip(labels, leaves, strict=True)
            for kind in leaf.kinds
        )

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(h.name for h in self.hyperparameters)

    def _per_leaf(self, values: Values) -> Iterator[Values]:
        names = iter(self.parameter_names)
        return iter([{kind: values[next(names)] for kind in leaf.kinds} for leaf in self.leaves()])

    def covariance(self, x1: torch.Tensor, x2: torch.Tensor, values: Values) -> torch.Tensor:
        """k(x1, x2) for each hyperparameter setting: (*batch, len(x1), len(x2)); `values` maps
        each of `parameter_names` to a tensor of shape (*batch,)."""
        difference = x1[:, None] - x2[None, :]
        return self._evaluate(self._per_leaf(values), lambda leaf, own: leaf.base_covariance(difference, own))

    def diagonal(self, x: torch.Tensor, values: Values) -> torch.Tensor:
        """k(x_i, x_i) without the full matrix: (*batch, len(x))."""
        return self._evaluate(self._per_leaf(values), lambda leaf, own: leaf.base_diagonal(x, own))

    def __add__(self, other: Kernel) -> Sum:
        return Sum(_flatten(Sum, (self, other)))

    def __mul__(self, other: Kernel) -> Product:
        return Product(_flatten(Product, (self, other)))


def occurrence_labels(names: list[str]) -> list[str]:
    """``[rbf, periodic, rbf]`` -> ``[rbf, periodic, rbf_2]``."""
    seen: dict[str, int] = {}
    labels = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        labels.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return labels


class BaseKernel(Kernel):
    """One named kernel (`name` in params.yaml) whose hyperparameters are `kinds`."""

    name: ClassVar[str]
    kinds: ClassVar[tuple[str, ...]]

    def leaves(self) -> tuple[BaseKernel, ...]:
        return (self,)

    def _evaluate(self, per_leaf: Iterator[Values], evaluate: LeafEvaluation) -> torch.Tensor:
        return evaluate(self, next(per_leaf))

    @abstractmethod
    def base_covariance(self, difference: torch.Tensor, values: Values) -> torch.Tensor:
        """The kernel at the differences x1 - x2, (n1, n2), for hyperparameters keyed by kind,
        each (*batch,): (*batch, n1, n2)."""

    def base_diagonal(self, x: torch.Tensor, values: Values) -> torch.Tensor:
        """k(x, x) = variance for the stationary kernels here: (*batch, len(x))."""
        variance = values["variance"]
        return variance[..., None].expand(*variance.shape, len(x))

    def __str__(self) -> str:
        return self.name


def matrix(value: torch.Tensor) -> torch.Tensor:
    """A (*batch,) hyperparameter as (*batch, 1, 1), to broadcast against (n1, n2)."""
    return value[..., None, None]


def _flatten(kind: type[Sum | Product], kernels: tuple[Kernel, ...]) -> tuple[Kernel, ...]:
    return tuple(part for k in kernels for part in (k.kernels if isinstance(k, kind) else (k,)))


@dataclass(frozen=True)
class Combination(Kernel):
    kernels: tuple[Kernel, ...]
    combine: ClassVar[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]
    symbol: ClassVar[str]

    def __post_init__(self) -> None:
        if len(self.kernels) < 2:
            raise ValueError(f"{type(self).__name__} needs at least two kernels, got {len(self.kernels)}")

    def leaves(self) -> tuple[BaseKernel, ...]:
        return tuple(leaf for k in self.kernels for leaf in k.leaves())

    def _evaluate(self, per_leaf: Iterator[Values], evaluate: LeafEvaluation) -> torch.Tensor:
        parts = [k._evaluate(per_leaf, evaluate) for k in self.kernels]
        return functools.reduce(type(self).combine, parts)

    def __str__(self) -> str:
        return f" {self.symbol} ".join(
            f"({k})" if isinstance(k, Sum) and isinstance(self, Product) else str(k) for k in self.kernels
        )


@dataclass(frozen=True)
class Sum(Combination):
    """k(x, z) = k_1(x, z) + k_2(x, z) + ..."""

    combine = operator.add
    symbol = "+"


@dataclass(frozen=True)
class Product(Combination):
    """k(x, z) = k_1(x, z) k_2(x, z) ..."""

    combine = operator.mul
    symbol = "*"
