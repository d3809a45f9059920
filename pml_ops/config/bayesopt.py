"""The `bayesopt` section: the interval, initial design, kernel, acquisition and NUTS settings of
Bayesian optimisation; its objective is checked like the GP's (`pml_ops.config.gp`), its kernel
by the same grammar (`pml_ops.config.kernel_expression`; the priors it needs are the `gp`
section's, checked across sections in `pml_ops.config.params`)."""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from pml_ops.config.base import NonEmptyStr, NonNegativeInt, PositiveFloat, PositiveInt, Section
from pml_ops.config.gp import NUTSParams, check_objective, check_objective_finite
from pml_ops.config.kernel_expression import check_kernel
from pml_ops.core.expression import DENSE_GRID_POINTS


class BayesOptOutputs(Section):
    metrics: NonEmptyStr
    history: NonEmptyStr
    figures: NonEmptyStr


class WarmStartParams(Section):
    """BO iterations after the first start NUTS at the previous fit's state and adaptation."""

    enabled: bool
    warmup_steps: NonNegativeInt


class BayesOptParams(Section):
    objective: NonEmptyStr
    bounds: Annotated[list[float], Field(min_length=2, max_length=2)]
    x_init: Annotated[list[float], Field(min_length=2)]
    iterations: PositiveInt
    kernel: NonEmptyStr = "rbf"  # as gp.kernel; the hyperparameters' priors are gp.priors
    acquisition: Literal["expected_improvement", "thompson", "lower_confidence_bound"]
    lcb_kappa: PositiveFloat
    grid_points: Annotated[int, Field(ge=11)]
    acquisition_samples: PositiveInt
    success_tolerance: PositiveFloat
    plot_iterations: list[PositiveInt]
    nuts: NUTSParams
    warm_start: WarmStartParams
    outputs: BayesOptOutputs

    _objective = field_validator("objective")(check_objective)
    _kernel = field_validator("kernel")(check_kernel)

    @model_validator(mode="after")
    def _check_interval(self) -> BayesOptParams:
        low, high = self.bounds
        if not low < high:
            raise ValueError(f"bounds: lower bound {low} must be below upper bound {high}")
        outside = [x for x in self.x_init if not low <= x <= high]
        if outside:
            raise ValueError(f"x_init: {outside} outside bounds [{low}, {high}]")
        # every point the stage evaluates: x_init, the acquisition grid, the global-minimum grid
        grid = np.concatenate(
            [self.x_init, np.linspace(low, high, self.grid_points), np.linspace(low, high, DENSE_GRID_POINTS)]
        )
        check_objective_finite(self.objective, grid, f"bayesopt.bounds [{low:g}, {high:g}]")
        return self
