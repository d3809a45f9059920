"""The one place that reads params.yaml into typed, validated configuration.

Every stage calls `load_params()` before doing any work, so a bad value stops the run at once
with a message that names the key. Values live in params.yaml only (no defaults hidden here):
a missing key is an error too, which keeps DVC's view of the parameters and ours identical.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)

from pml_ops.core.errors import ConfigError, PmlOpsError
from pml_ops.core.expression import DENSE_GRID_POINTS, Expression, check_finite

DEFAULT_PARAMS_FILE = "params.yaml"
# libyaml's parser where PyYAML was built with it (the wheels are): ~10x faster than the pure
# Python one on dvc.lock and params.yaml, which every stage reads.
YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
Fraction = Annotated[float, Field(gt=0, lt=1)]
NonEmptyStr = Annotated[str, Field(min_length=1)]
Probability = Annotated[float, Field(gt=0, lt=1)]


class Section(BaseModel):
    """Base for every params.yaml section: unknown keys and silent type coercion are errors."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


DatasetName = Literal["mnist", "fashion-mnist"]


class DataParams(Section):
    dataset: DatasetName
    path: NonEmptyStr
    metrics: NonEmptyStr
    info: NonEmptyStr
    mirrors: dict[DatasetName, Annotated[list[NonEmptyStr], Field(min_length=1)]]
    timeout_s: PositiveFloat
    retries: Annotated[int, Field(ge=0, le=10)]

    @model_validator(mode="after")
    def _mirrors_for_the_dataset(self) -> DataParams:
        if self.dataset not in self.mirrors:
            raise ValueError(f"data.mirrors: no mirrors for data.dataset '{self.dataset}'")
        if Path(self.info) == Path(self.metrics):
            raise ValueError(f"data.info: must differ from data.metrics ({self.metrics})")
        return self


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


def _check_objective(text: str) -> str:
    try:
        Expression(text)
    except PmlOpsError as error:
        raise ValueError(str(error)) from None
    return text


def _check_objective_finite(text: str, x: np.ndarray, where: str) -> None:
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
    priors: GPPriorParams
    nuts: NUTSParams
    predictive: GPPredictiveParams
    outputs: GPOutputs

    _objective = field_validator("objective")(_check_objective)

    @model_validator(mode="after")
    def _check_objective_values(self) -> GPParams:
        low, high = min(self.x_train), max(self.x_train)
        grid = np.linspace(low, high, self.predictive.num_points)
        points = np.concatenate([self.x_train, grid, [self.predictive.x_star]])
        where = f"gp.x_train, its predictive grid [{low:g}, {high:g}] and gp.predictive.x_star"
        _check_objective_finite(self.objective, points, where)
        return self


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
        # every point the stage evaluates: x_init, the acquisition grid, the global-minimum grid
        grid = np.concatenate(
            [self.x_init, np.linspace(low, high, self.grid_points), np.linspace(low, high, DENSE_GRID_POINTS)]
        )
        _check_objective_finite(self.objective, grid, f"bayesopt.bounds [{low:g}, {high:g}]")
        return self


# --- density models on MNIST (issue #3) -------------------------------------------------------


class SubsetParams(Section):
    """How many images of each split to use: null means all (tests and smoke runs use a few)."""

    train: PositiveInt | None
    test: PositiveInt | None


class DensityParams(Section):
    """Settings shared by every density model."""

    seed: NonNegativeInt
    device: Literal["auto", "cpu", "cuda"]
    # torch CPU threads: 'auto' = the cores this process may use; null = torch's default
    cpu_threads: Literal["auto"] | PositiveInt | None

    @field_validator("cpu_threads", mode="wrap")
    @classmethod
    def _auto_count_or_null(cls, value: Any, handler: Any) -> Any:
        try:
            return handler(value)
        except ValidationError:
            raise ValueError(f"must be 'auto', a positive integer or null, got {value!r}") from None

    subset: SubsetParams
    validation_fraction: Fraction  # held out of the training set for the validation ELBO
    checkpoint_dir: NonEmptyStr
    models_dir: NonEmptyStr
    metrics_dir: NonEmptyStr
    figures_dir: NonEmptyStr


# The VAE decoder's observation model: the study's Bernoulli on grey levels (not a normalised
# density over [0, 1]) or the continuous Bernoulli (one; pml_ops.density.units).
Decoder = Literal["bernoulli", "continuous_bernoulli"]


class MlpVaeArchitecture(Section):
    """VAE with MLP encoder 784 -> hidden[0] -> ... -> heads; the decoder mirrors it."""

    latent_dim: PositiveInt
    hidden: Annotated[list[PositiveInt], Field(min_length=1)]
    decoder: Decoder = "bernoulli"


class ConvVaeArchitecture(Section):
    """VAE with a strided-convolution encoder and a transposed-convolution decoder that mirrors it;
    `hidden` lists optional linear layers between the flattened features and the latent heads."""

    latent_dim: PositiveInt
    channels: Annotated[list[PositiveInt], Field(min_length=1)]
    kernel_size: PositiveInt
    stride: PositiveInt
    padding: NonNegativeInt
    output_padding: NonNegativeInt
    hidden: list[PositiveInt]
    decoder: Decoder = "bernoulli"


class TrainingParams(Section):
    epochs: PositiveInt
    batch_size: PositiveInt
    lr: PositiveFloat
    # Adam's fused kernel (one pass over all parameters; CPU and CUDA) instead of torch's CPU
    # for-loop: the same update up to float rounding, but rounding differences grow over an epoch
    # (docs/results.md), so it is off by default and earlier runs stay reproducible bit for bit.
    fused_adam: StrictBool = False


class VaeParams(Section):
    architecture: MlpVaeArchitecture
    training: TrainingParams


class CvaeParams(Section):
    architecture: ConvVaeArchitecture
    training: TrainingParams


class PpcaParams(Section):
    latent_dim: PositiveInt


# Each component holds a mean and a covariance over 784 pixels (a full one is 4.9 MB): beyond a
# thousand components the fit runs out of memory or time long before it says anything useful.
MAX_GMM_COMPONENTS = 1000


class GmmParams(Section):
    n_components: Annotated[int, Field(gt=0, le=MAX_GMM_COMPONENTS)]
    covariance_type: Literal["full", "tied", "diag", "spherical"]
    reg_covar: PositiveFloat
    max_iter: PositiveInt
    n_init: PositiveInt


class EvaluateParams(Section):
    iwae_samples: PositiveInt  # K of the importance-weighted bound on log p(x)
    iwae_images: PositiveInt | None  # the first N test images get the IWAE bound; null = all
    # Activations one scoring pass may hold (IWAE, ELBO, reconstructions, figures), in MiB: batch
    # sizes follow from the architecture's bytes per image and per latent sample.
    memory_budget_mib: PositiveFloat
    dequantisation_seed: NonNegativeInt  # the uniform noise u of (k + u) / 256, the same for every model
    knn_neighbors: PositiveInt
    grid_size: PositiveInt
    grid_span: PositiveFloat  # the latent grid covers [-span, span] in each of the first two dims
    n_reconstructions: PositiveInt
    samples_per_component: PositiveInt


class ReportParams(Section):
    html: NonEmptyStr
    markdown: NonEmptyStr
    bo_study: NonEmptyStr  # results of benchmarks/bayesopt_study.py, shown when present
    seed_variation: NonEmptyStr  # results of benchmarks/seed_variation.py, shown when present
    metrics: NonEmptyStr  # the report stage's own wall time and peak memory
    # The numbers the original study reported, shown beside ours: model -> {column: value}.
    study: dict[str, dict[str, float]]


# --- Tuning (Optuna) -------------------------------------------------------------------------


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


class ModelEntry(Section):
    """One density model of the study (an entry of `models`). `family` picks the model class and
    its params.yaml section. `file` and `section` say where its hyperparameters live: the family's
    own section of params.yaml, or a tuned section of `tuning.best_params_file` whose architecture
    and learning rate replace the family's (`base` is then `<family>.training`, the settings kept).
    dvc.yaml's `foreach` reads `file`, `section` and `base` as the parameters the model's stages
    depend on, so they are checked to be exactly what the stages read."""

    family: Literal["vae", "cvae", "ppca", "gmm"]
    file: NonEmptyStr
    section: NonEmptyStr
    base: NonEmptyStr
    # VAE families: keys of the architecture (from `file`: `section`) replaced for this model only,
    # e.g. `vae_cb`'s {decoder: continuous_bernoulli}; the rest of the model stays the section's.
    architecture: Annotated[dict[NonEmptyStr, Any], Field(min_length=1)] | None = None

    @property
    def tuned(self) -> bool:
        return self.file != DEFAULT_PARAMS_FILE


def override_architecture(
    arch: MlpVaeArchitecture | ConvVaeArchitecture, override: dict[str, Any], where: str
) -> MlpVaeArchitecture | ConvVaeArchitecture:
    """`arch` with the keys of `override` replaced, validated like the section itself; a bad key or
    value raises ValueError naming `where`.<key>."""
    try:
        return type(arch).model_validate({**arch.model_dump(), **override})
    except ValidationError as error:
        problems = []
        for item in error.errors():
            key = f"{where}.{_format_location(item['loc'])}"
            if item["type"] == "extra_forbidden":
                problems.append(f"{key}: not a key of the {type(arch).__name__}")
            else:
                problems.append(f"{key}: {item['msg']} (got {item['input']!r})")
        raise ValueError("; ".join(problems)) from None


class Params(Section):
    data: DataParams
    tracking: TrackingParams
    gp: GPParams
    bayesopt: BayesOptParams
    density: DensityParams
    vae: VaeParams
    cvae: CvaeParams
    ppca: PpcaParams
    gmm: GmmParams
    evaluate: EvaluateParams
    report: ReportParams
    tuning: TuningParams
    models: Annotated[dict[NonEmptyStr, ModelEntry], Field(min_length=1)]

    @model_validator(mode="after")
    def _check_models(self) -> Params:
        for name, entry in self.models.items():
            expected: dict[str, str]
            if not entry.tuned:
                expected = {"section": entry.family, "base": entry.family}
            elif entry.family not in ("vae", "cvae"):
                raise ValueError(f"models.{name}.file: only VAE families read a tuned section")
            else:
                expected = {"base": f"{entry.family}.training"}
            for key, value in expected.items():
                if getattr(entry, key) != value:
                    raise ValueError(
                        f"models.{name}.{key}: must be {value!r} for a {entry.family} model read "
                        f"from {entry.file} (got {getattr(entry, key)!r})"
                    )
            if entry.architecture is not None:
                if entry.family not in ("vae", "cvae"):
                    raise ValueError(
                        f"models.{name}.architecture: a {entry.family} model has no architecture"
                    )
                family: VaeParams | CvaeParams = getattr(self, entry.family)
                override_architecture(family.architecture, entry.architecture, f"models.{name}.architecture")
        return self

    @model_validator(mode="after")
    def _check_gmm_fits_the_data(self) -> Params:
        """EM needs at least one training image per component."""
        if self.density.subset.train is None:
            return self
        n_train = self.density.subset.train - round(
            self.density.subset.train * self.density.validation_fraction
        )
        if self.gmm.n_components > n_train:
            raise ValueError(
                f"gmm.n_components: {self.gmm.n_components} components need at least as many "
                f"training images, density.subset.train leaves {n_train} after the validation split"
            )
        return self


def flatten(prefix: str, value: Any) -> dict[str, Any]:
    """Nested params -> {'gp.nuts.num_samples': 2000, ...}: the dotted keys used everywhere
    (error messages, MLflow params)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(f"{prefix}.{key}", item))
        return out
    return {prefix: value}


def _format_location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def format_validation_error(source: str, error: ValidationError) -> str:
    lines = [f"{source}: {error.error_count()} invalid setting(s):"]
    for item in error.errors():
        key = _format_location(item["loc"])
        if item["type"] == "extra_forbidden":
            lines.append(f"  - unknown key '{key}'")
        elif item["type"] == "missing":
            lines.append(f"  - missing key '{key}'")
        elif not key:  # a check across sections: its message names the keys
            lines.append(f"  - {item['msg'].removeprefix('Value error, ')}")
        elif isinstance(item["input"], dict):  # a check across a section's keys: no value to show
            lines.append(f"  - '{key}': {item['msg']}")
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
        raise ConfigError(format_validation_error(source, error)) from None


def _duplicate_keys(node: yaml.Node, path: str = "") -> list[str]:
    """Every key that appears twice in one mapping, with both line numbers (1-based)."""
    found: list[str] = []
    if isinstance(node, yaml.MappingNode):
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            dotted = f"{path}.{key}" if path else key
            line = key_node.start_mark.line + 1
            if key in first_line:
                found.append(f"'{dotted}' on line {line} (first on line {first_line[key]})")
            else:
                first_line[key] = line
            found.extend(_duplicate_keys(value_node, dotted))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            found.extend(_duplicate_keys(item, f"{path}.{index}"))
    return found


def load_yaml(text: str, source: str) -> Any:
    """Parse YAML, refusing duplicate keys (YAML lets the last one win silently)."""
    try:
        root = yaml.compose(text, Loader=YAML_LOADER)
        duplicates = [] if root is None else _duplicate_keys(root)
        if not duplicates:
            return yaml.load(text, Loader=YAML_LOADER)
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: not valid YAML: {error}") from None
    raise ConfigError(f"{source}: duplicate key(s), the last would silently win: " + "; ".join(duplicates))


def load_params(path: str | os.PathLike[str] = DEFAULT_PARAMS_FILE) -> Params:
    """Read and validate params.yaml."""
    file = Path(path)
    try:
        text = file.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{file}: parameters file not found (run from the project root)") from None
    return parse_params(load_yaml(text, str(file)), source=str(file))
