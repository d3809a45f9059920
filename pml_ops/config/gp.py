"""The `gp` section: the objective, the kernel and its priors, the NUTS sampler and the
predictive grid.

The kernel expressions of `gp` and `bayesopt` are parsed with `pml_ops.config.kernel_expression`;
`check_kernel_priors` checks that `gp.priors` holds a prior for each kind of hyperparameter the
kernel has. The objective expressions of `gp` and `bayesopt` are checked here (`check_objective`,
`check_objective_finite`) with `pml_ops.core.expression`: one that does not parse, or is not
finite at a point the stage evaluates, stops the run before any work."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, ValidationError, field_validator, model_validator

from pml_ops.config.base import NonEmptyStr, NonNegativeInt, PositiveFloat, PositiveInt, Probability, Section
from pml_ops.config.kernel_expression import check_kernel, hyperparameter_kinds, parse_kernel_expression
from pml_ops.core.errors import PmlOpsError
from pml_ops.core.expression import Expression, check_finite


class LogNormalParams(Section):
    """LogNormal(loc, scale): log of the value is Normal(loc, scale)."""

    loc: float
    scale: PositiveFloat


class GPPriorParams(Section):
    """One prior per kind of hyperparameter, shared by every kernel of that kind in a sum or
    product; `alpha` (rational quadratic) and `period` (periodic) only where the kernel has one."""

    variance: LogNormalParams
    lengthscale: LogNormalParams
    alpha: LogNormalParams | None = None
    period: LogNormalParams | None = None


def check_kernel_priors(kernel: str, priors: GPPriorParams, key: str) -> None:
    """Every kind of hyperparameter of the kernel at `key` has its prior in `gp.priors`."""
    for kind in hyperparameter_kinds(parse_kernel_expression(kernel, key)):
        if getattr(priors, kind) is None:
            raise ValueError(
                f"gp.priors.{kind}: missing; {key} {kernel!r} has a {kind} hyperparameter "
                f"(give it a LogNormal {{loc, scale}})"
            )


class NUTSParams(Section):
    num_chains: PositiveInt
    warmup_steps: NonNegativeInt
    num_samples: PositiveInt
    seed: NonNegativeInt
    # processes for the chains: 'auto' = min(num_chains, usable cores); 1 = in-process
    parallel_chains: Literal["auto"] | PositiveInt
    target_accept_prob: Probability
    max_tree_depth: PositiveInt
    full_mass: bool
    init_radius: PositiveFloat

    @field_validator("parallel_chains", mode="wrap")
    @classmethod
    def _auto_or_count(cls, value: Any, handler: Any) -> Any:
        try:
            return handler(value)
        except ValidationError:
            raise ValueError(f"must be 'auto' or a positive integer, got {value!r}") from None


def check_objective(text: str) -> str:
    try:
        Expression(text)
    except PmlOpsError as error:
        raise ValueError(str(error)) from None
    return text


def check_objective_finite(text: str, x: np.ndarray, where: str) -> None:
    try:
        check_finite(Expression(text), x, where)
    except PmlOpsError as error:
        raise ValueError(str(error)) from None


class GPPredictiveParams(Section):
    num_points: Annotated[int, Field(ge=2)]
    x_star: float
    draws_per_sample: PositiveInt
    seed: NonNegativeInt


class GPOutputs(Section):
    inference_data: NonEmptyStr
    metrics: NonEmptyStr
    figures: NonEmptyStr


class GPParams(Section):
    objective: NonEmptyStr
    x_train: Annotated[list[float], Field(min_length=2)]
    noise_variance: PositiveFloat
    # rbf, matern12, matern32, matern52, rational_quadratic, periodic, combined with + and *
    kernel: NonEmptyStr = "rbf"
    priors: GPPriorParams
    nuts: NUTSParams
    predictive: GPPredictiveParams
    outputs: GPOutputs

    _objective = field_validator("objective")(check_objective)
    _kernel = field_validator("kernel")(check_kernel)

    @model_validator(mode="after")
    def _check_kernel_priors(self) -> GPParams:
        check_kernel_priors(self.kernel, self.priors, "gp.kernel")
        return self

    @model_validator(mode="after")
    def _check_objective_values(self) -> GPParams:
        low, high = min(self.x_train), max(self.x_train)
        grid = np.linspace(low, high, self.predictive.num_points)
        points = np.concatenate([self.x_train, grid, [self.predictive.x_star]])
        where = f"gp.x_train, its predictive grid [{low:g}, {high:g}] and gp.predictive.x_star"
        check_objective_finite(self.objective, points, where)
        return self
