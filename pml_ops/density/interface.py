"""The one interface every density model offers to the stages, evaluation and figures.

Images are float arrays (N, 784) with pixel values in [0, 1]; scores are nats per image. Each
family (VAE/CVAE, PPCA, GMM, or one from another package) is one class in the scikit-learn style:
the constructor takes the hyperparameters, `fit` learns state whose attribute names end in `_`,
`save`/`load` write and read one self-describing artifact (pml_ops.density.artifact).
`DensityModel` is what all families share; `LatentDensityModel` adds the continuous latent space
(VAE, CVAE, PPCA: latent figures, k-NN and reconstructions); `ImportanceWeightedModel` a sampled
lower bound with its importance-weighted tightening (the VAE family: Monte Carlo errors, IWAE).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from pml_ops.config import EvaluateParams
from pml_ops.density.data import DensitySplit

DIGITS = tuple(str(d) for d in range(10))  # MNIST's class names, the default in figures


@dataclass(frozen=True)
class EpochStats:
    """One finished epoch (1-based) of an iterative fit: mean ELBOs in nats per image, training
    throughput."""

    epoch: int
    train_elbo: float
    val_elbo: float
    seconds: float
    images_per_second: float


@dataclass(frozen=True)
class FitCallbacks:
    """What a stage hands to `fit`: a per-epoch callback and a checkpoint file (iterative models
    use them; closed-form fits ignore them)."""

    on_epoch: Callable[[EpochStats], None] | None = None
    checkpoint: Path | None = None


@dataclass(frozen=True)
class FigureInputs:
    """What a model's `figures` draw on: the test set with its labels, the evaluate settings, the
    folder to write to, the seed of any sampling and the class names for legends."""

    x_test: np.ndarray
    y_test: np.ndarray
    params: EvaluateParams
    out: Path
    seed: int
    class_names: tuple[str, ...] = DIGITS


@runtime_checkable
class DensityModel(Protocol):
    name: str
    family: str
    objective: str  # "ELBO" (a lower bound) or "exact log-likelihood"
    observation: str  # the observation model, stated beside every score
    normalised: bool  # log_density is (or bounds) a normalised density over [0, 1]^784: bits/dim apply
    train_metrics_: dict[str, Any]  # set by `fit`: scores on the training and validation images
    history_: list[dict[str, Any]]  # set by `fit`: one row per epoch (empty for closed forms)

    def fit(self, split: DensitySplit, callbacks: FitCallbacks) -> DensityModel: ...

    def save(self, path: Path) -> None: ...

    def log_density(self, x: np.ndarray) -> np.ndarray: ...

    def sample(self, n: int, seed: int) -> np.ndarray: ...

    def hyperparameters(self) -> dict[str, Any]: ...

    def run_params(self) -> dict[str, Any]: ...

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Posterior mean of the latent variable per image (for the GMM: the posterior
        probability of each component, the mean of the one-hot component indicator)."""
        ...

    def reconstruct(self, x: np.ndarray, sample: bool, seed: int) -> np.ndarray:
        """Decoder mean at the posterior mean (sample=False) or at one posterior sample."""
        ...

    def figures(self, inputs: FigureInputs) -> list[Path]: ...


@runtime_checkable
class LatentDensityModel(DensityModel, Protocol):
    latent_dim: int

    def decode(self, z: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class ImportanceWeightedModel(DensityModel, Protocol):
    """A model whose `log_density` is a sampled lower bound (the single-sample ELBO): evaluation
    draws it twice for its Monte Carlo error and adds the importance-weighted bound (IWAE)."""

    def log_density(self, x: np.ndarray, seed: int = 0) -> np.ndarray: ...

    def iwae_with_variance(self, x: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """The IWAE bound with K = k per image and its Monte Carlo variance."""
        ...
