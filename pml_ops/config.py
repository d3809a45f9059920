"""The one place that reads params.yaml into typed, validated configuration.

Every stage calls `load_params()` before doing any work, so a bad value stops the run at once
with a message that names the key. Values live in params.yaml only (no defaults hidden here):
a missing key is an error too, which keeps DVC's view of the parameters and ours identical.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pml_ops.errors import ConfigError, PmlOpsError

DEFAULT_PARAMS_FILE = "params.yaml"

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonEmptyStr = Annotated[str, Field(min_length=1)]
NonNegativeInt = Annotated[int, Field(ge=0)]
Probability = Annotated[float, Field(gt=0, lt=1)]


class Section(BaseModel):
    """Base for every params.yaml section: unknown keys and silent type coercion are errors."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class DataParams(Section):
    path: NonEmptyStr
    mirrors: Annotated[list[NonEmptyStr], Field(min_length=1)]
    timeout_s: PositiveFloat
    retries: Annotated[int, Field(ge=0, le=10)]


class TrackingParams(Section):
    uri: NonEmptyStr
    experiment: NonEmptyStr
    artifact_root: NonEmptyStr


class LogNormalParams(Section):
    """LogNormal(loc, scale): log of the value is Normal(loc, scale)."""

    loc: float
    scale: PositiveFloat


class GPPriorParams(Section):
    variance: LogNormalParams
    lengthscale: LogNormalParams


class NUTSParams(Section):
    num_chains: PositiveInt
    warmup_steps: NonNegativeInt
    num_samples: PositiveInt
    seed: NonNegativeInt
    # processes for the chains: 'auto' = min(num_chains, os.cpu_count()); 1 = in-process
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


def _check_objective(text: str) -> str:
    from pml_ops.gp.objective import Expression

    try:
        Expression(text)
    except PmlOpsError as error:
        raise ValueError(str(error)) from None
    return text


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
    priors: GPPriorParams
    nuts: NUTSParams
    predictive: GPPredictiveParams
    outputs: GPOutputs

    _objective = field_validator("objective")(_check_objective)


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
    acquisition: Literal["expected_improvement", "thompson", "lower_confidence_bound"]
    lcb_kappa: PositiveFloat
    grid_points: Annotated[int, Field(ge=11)]
    acquisition_samples: PositiveInt
    success_tolerance: PositiveFloat
    plot_iterations: list[PositiveInt]
    nuts: NUTSParams
    warm_start: WarmStartParams
    outputs: BayesOptOutputs

    _objective = field_validator("objective")(_check_objective)

    @model_validator(mode="after")
    def _check_interval(self) -> BayesOptParams:
        low, high = self.bounds
        if not low < high:
            raise ValueError(f"bounds: lower bound {low} must be below upper bound {high}")
        outside = [x for x in self.x_init if not low <= x <= high]
        if outside:
            raise ValueError(f"x_init: {outside} outside bounds [{low}, {high}]")
        return self


class Params(Section):
    data: DataParams
    tracking: TrackingParams
    gp: GPParams
    bayesopt: BayesOptParams


def _format_location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _format_validation_error(source: str, error: ValidationError) -> str:
    lines = [f"{source}: {error.error_count()} invalid setting(s):"]
    for item in error.errors():
        key = _format_location(item["loc"])
        if item["type"] == "extra_forbidden":
            lines.append(f"  - unknown key '{key}'")
        elif item["type"] == "missing":
            lines.append(f"  - missing key '{key}'")
        else:
            lines.append(f"  - '{key}': {item['msg']} (got {item['input']!r})")
    return "\n".join(lines)


def parse_params(raw: Any, source: str = DEFAULT_PARAMS_FILE) -> Params:
    """Validate an already-loaded mapping; raise ConfigError naming every bad key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of sections, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(_format_validation_error(source, error)) from None


def load_params(path: str | os.PathLike[str] = DEFAULT_PARAMS_FILE) -> Params:
    """Read and validate params.yaml."""
    file = Path(path)
    try:
        text = file.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{file}: parameters file not found (run from the project root)") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{file}: not valid YAML: {error}") from None
    return parse_params(raw, source=str(file))
