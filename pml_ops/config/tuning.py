"""The `tuning` section (Optuna): the search spaces (`IntParam`, `FloatParam`,
`CategoricalParam`), each model's study, how a trial trains, heartbeats and the study itself."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from pml_ops.config.base import NonEmptyStr, NonNegativeInt, PositiveFloat, PositiveInt, Section


class IntParam(Section):
    """An integer range for `trial.suggest_int`."""

    type: Literal["int"]
    low: int
    high: int
    log: bool

    @model_validator(mode="after")
    def _check_range(self) -> IntParam:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        if self.log and self.low < 1:
            raise ValueError("a log-scaled int range needs low >= 1")
        return self


class FloatParam(Section):
    """A float range for `trial.suggest_float`."""

    type: Literal["float"]
    low: float
    high: float
    log: bool

    @model_validator(mode="after")
    def _check_range(self) -> FloatParam:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("a log-scaled float range needs low > 0")
        return self


class CategoricalParam(Section):
    """A list of choices for `trial.suggest_categorical` (ints here: sizes, kernels, strides)."""

    type: Literal["categorical"]
    choices: Annotated[list[int], Field(min_length=1)]


IntSpec = Annotated[IntParam | CategoricalParam, Field(discriminator="type")]


def _require_positive(spaces: dict[str, IntParam | CategoricalParam], minimum: int = 1) -> None:
    for name, spec in spaces.items():
        lowest = spec.low if isinstance(spec, IntParam) else min(spec.choices)
        if lowest < minimum:
            raise ValueError(f"'{name}' must only allow values >= {minimum} (got {lowest})")


class CvaeSpace(Section):
    """CVAE search space: convolution geometry, widths per layer and learning rate."""

    kernel_size: IntSpec
    stride: IntSpec
    conv_layers: IntSpec
    channels: IntSpec  # sampled once per conv layer: channels_1 ... channels_<conv_layers>
    hidden: IntSpec  # width of one linear layer between convolutions and latent heads; 0 for none
    lr: FloatParam

    @model_validator(mode="after")
    def _check_values(self) -> CvaeSpace:
        _require_positive(
            {"kernel_size": self.kernel_size, "stride": self.stride, "conv_layers": self.conv_layers}
        )
        _require_positive({"channels": self.channels})
        _require_positive({"hidden": self.hidden}, minimum=0)  # 0: no linear layer (the study's)
        if self.lr.low <= 0:
            raise ValueError("'lr' must be > 0")
        return self


class VaeSpace(Section):
    """VAE search space: hidden width, number of hidden layers and learning rate."""

    hidden: IntSpec
    depth: IntSpec
    lr: FloatParam

    @model_validator(mode="after")
    def _check_values(self) -> VaeSpace:
        _require_positive({"hidden": self.hidden, "depth": self.depth})
        if self.lr.low <= 0:
            raise ValueError("'lr' must be > 0")
        return self


class CvaeStudyParams(Section):
    study_name: NonEmptyStr
    space: CvaeSpace


class VaeStudyParams(Section):
    study_name: NonEmptyStr
    space: VaeSpace


def _refuse_key(data: Any, key: str, message: str) -> Any:
    """A validator's input unchanged, or ValueError(message) when it holds a removed `key`."""
    if isinstance(data, dict) and key in data:
        raise ValueError(message)
    return data


class TrialTrainingParams(Section):
    """How each trial trains: on `train_size` training images, scored on `validation_size`
    other training images (never the test set)."""

    epochs: PositiveInt
    train_size: PositiveInt
    validation_size: PositiveInt
    seed: NonNegativeInt
    max_seconds: PositiveFloat | None  # prune a trial still training after this long (null: never)
    # Cost, the study's second objective: training FLOPs per image, counted from the layer shapes.
    # Only trials costing at most `max_cost_ratio` x the model's own params.yaml architecture may
    # be promoted; trials over `max_train_cost_ratio` x are pruned before training (null: none).
    max_cost_ratio: PositiveFloat
    max_train_cost_ratio: PositiveFloat | None

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        return _refuse_key(
            data,
            "max_epoch_time_ratio",
            "max_epoch_time_ratio was replaced by max_cost_ratio: the cost budget is now in "
            "training FLOPs per image (counted, not timed) relative to the model's own architecture",
        )

    @model_validator(mode="after")
    def _train_cap(self) -> TrialTrainingParams:
        cap = self.max_train_cost_ratio
        if cap is not None and cap < self.max_cost_ratio:
            raise ValueError(
                f"max_train_cost_ratio ({cap:g}) is below max_cost_ratio ({self.max_cost_ratio:g}): "
                "trials the promotion budget admits would never be trained"
            )
        return self


class HeartbeatParams(Section):
    """Optuna heartbeats: a trial whose worker stops (killed, machine lost) is failed and retried."""

    interval_s: PositiveInt  # each running trial records a heartbeat this often
    grace_period_s: PositiveInt  # ... and is failed after this long without one
    max_retry: NonNegativeInt  # a trial failed that way reruns (same params) at most this often
    worker_restarts: NonNegativeInt  # a local worker that dies is replaced at most this often

    @model_validator(mode="after")
    def _check_grace(self) -> HeartbeatParams:
        if self.grace_period_s <= self.interval_s:
            raise ValueError(
                f"grace_period_s ({self.grace_period_s}) must exceed interval_s ({self.interval_s}), "
                "or every trial would look dead between two heartbeats"
            )
        return self


class TuningParams(Section):
    """The multi-objective study (validation ELBO up, training FLOPs per image down)."""

    storage: NonEmptyStr  # Optuna storage URL; relative sqlite:/// paths live in the project
    trials: PositiveInt  # trials one `tune` run adds to the study, split over its workers
    timeout_s: PositiveFloat | None  # stop starting new trials after this long (null: no limit)
    workers: Annotated[int, Field(ge=1, le=64)]
    heartbeat: HeartbeatParams
    seed: NonNegativeInt
    output_dir: NonEmptyStr
    best_params_file: NonEmptyStr
    trial: TrialTrainingParams
    cvae: CvaeStudyParams
    vae: VaeStudyParams

    @model_validator(mode="before")
    @classmethod
    def _no_pruner(cls, data: Any) -> Any:
        return _refuse_key(
            data,
            "pruner",
            "tuning.pruner was removed: the study is multi-objective (validation ELBO and cost) and "
            "Optuna prunes only single-objective studies; delete the key (tuning.trial.max_seconds "
            "and max_train_cost_ratio still stop trials)",
        )
