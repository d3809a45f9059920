"""The density models on MNIST: the shared `density` settings, the VAE architectures and their
per-model overrides (`override_architecture`), training, the per-family sections (`vae`,
`cvae`, `ppca`, `gmm`) and `evaluate`."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import Field, StrictBool, ValidationError, field_validator

from pml_ops.config.base import Fraction, NonEmptyStr, NonNegativeInt, PositiveFloat, PositiveInt, Section
from pml_ops.config.messages import format_location


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


ArchitectureT = TypeVar("ArchitectureT", bound=Section)


def override_architecture(arch: ArchitectureT, override: dict[str, Any], where: str) -> ArchitectureT:
    """`arch` with the keys of `override` replaced, validated like the section itself; a bad key or
    value raises ValueError naming `where`.<key>."""
    try:
        return type(arch).model_validate({**arch.model_dump(), **override})
    except ValidationError as error:
        problems = []
        for item in error.errors():
            key = f"{where}.{format_location(item['loc'])}"
            if item["type"] == "extra_forbidden":
                problems.append(f"{key}: not a key of the {type(arch).__name__}")
            else:
                problems.append(f"{key}: {item['msg']} (got {item['input']!r})")
        raise ValueError("; ".join(problems)) from None


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
