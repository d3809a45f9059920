"""MNIST as tensors for the density models: subsets, the train/validation split, the device."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from pml_ops.config import Params
from pml_ops.core.errors import ConfigError
from pml_ops.core.resources import usable_cpus
from pml_ops.data.mnist import load_mnist

if TYPE_CHECKING:
    import torch

# torch (~1.1 s at import) is imported where it is used: every density stage imports this module
# (through the model interface), and the compare stage and the PPCA and GMM evaluate stages never
# need torch.


def resolve_device(name: str, cpu_threads: int | Literal["auto"] | None = None) -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cuda' without a GPU is a user error.
    Sets torch's CPU thread count when `cpu_threads` is given ('auto': the usable cores)."""
    import torch  # deferred: see the note at the imports

    if cpu_threads is not None:
        torch.set_num_threads(usable_cpus() if cpu_threads == "auto" else cpu_threads)

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("density.device: 'cuda' requested but no CUDA device is available")
    return torch.device(name)


def train_validation_split(n: int, validation_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint sorted index arrays (train, validation) covering range(n); the validation part is
    round(n * fraction) images (at least one of each) drawn at random with `seed`."""
    n_val = round(n * validation_fraction)
    if n < 2 or not 1 <= n_val < n:
        raise ConfigError(
            f"density.validation_fraction: {validation_fraction} of {n} training images leaves an "
            "empty training or validation set"
        )
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def first(images: np.ndarray, labels: np.ndarray, count: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The first `count` images and labels (all of them when count is None)."""
    if count is None:
        return images, labels
    return images[:count], labels[:count]


def to_unit_float(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) in 0..255 -> float32 (N, 784) in [0, 1] (for PPCA and the GMM)."""
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def image_tensor(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28) in [0, 1], held on `device` in one piece."""
    import torch  # deferred: see the note at the imports

    return (torch.from_numpy(images).to(device).unsqueeze(1).float() / 255.0).contiguous()


@dataclass(frozen=True)
class DensitySplit:
    """uint8 images (N, 28, 28) and labels of the training, validation and test parts."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def density_split(params: Params) -> DensitySplit:
    """MNIST cut to `density.subset`, with `density.validation_fraction` of the training images
    held out (seeded by `density.seed`); the same split for every model."""
    data = load_mnist(params.data.path, params.data.dataset)
    x, y = first(data.x_train, data.y_train, params.density.subset.train)
    x_test, y_test = first(data.x_test, data.y_test, params.density.subset.test)
    train, val = train_validation_split(len(x), params.density.validation_fraction, params.density.seed)
    return DensitySplit(x[train], y[train], x[val], y[val], x_test, y_test)
