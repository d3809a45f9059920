"""One unit for every density model: bits per dimension of 8-bit images.

An 8-bit image holds grey levels k in {0, ..., 255}. Uniform dequantisation turns it into a point
of the continuous cube [0, 256)^D, v = k + u with u ~ U(0, 1)^D (seeded, so every model sees the
same points); a density p_V on that cube gives a lower bound on the discrete log-likelihood
(Theis et al., 2016). The models live on the [0, 1] scale, y = v / 256, so by the change of
variables log p_V(v) = log p_Y(y) - D log 256, and bits per dimension are -log2 p_V(v) / D.

Only normalised densities have a bits/dim: PPCA, the GMM and a continuous-Bernoulli VAE decoder
(its normaliser below); the study's Bernoulli decoder on grey levels is not a density over [0, 1]
and gets none.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

# torch (~1.1 s at import) is imported where it is used: the compare stage and the PPCA and GMM
# evaluate stages import this module for its numpy functions alone.

GREY_LEVELS = 256
LOG_GREY_LEVELS = math.log(GREY_LEVELS)
SMALL_LOGIT = 1e-2  # below |logit| this size the series of the continuous Bernoulli's mean is used


def dequantise(images: np.ndarray, seed: int) -> np.ndarray:
    """uint8 images (N, ...) -> float64 (N, D) in [0, 1): y = (k + u) / 256, u ~ U(0, 1) from `seed`."""
    k = images.reshape(len(images), -1).astype(np.float64)
    u = np.random.default_rng(seed).random(k.shape)
    return (k + u) / GREY_LEVELS


def dequantise_unit_images(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Float images k/255 (any shape) -> (k + u) / 256, u ~ U(0, 1) from `generator`: fresh
    dequantisation noise on the device, for training a density over [0, 1] on 8-bit images."""
    import torch  # deferred: see the note at the imports

    u = torch.rand(images.shape, generator=generator, device=images.device, dtype=images.dtype)
    return (torch.round(images * (GREY_LEVELS - 1)) + u) / GREY_LEVELS


def bits_per_dim(log_density_unit: np.ndarray, dims: int) -> np.ndarray:
    """Bits per dimension on the grey-level scale [0, 256)^D, from log-densities in nats on the
    model's [0, 1]^D scale (y = v / 256: log p_V = log p_Y - D log 256)."""
    return -(np.asarray(log_density_unit, dtype=np.float64) - dims * LOG_GREY_LEVELS) / (dims * math.log(2))


def mean_and_se(values: np.ndarray) -> tuple[float, float]:
    """Mean and its standard error (sample sd / sqrt(n); 0 for a single value)."""
    v = np.asarray(values, dtype=np.float64)
    se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0
    return float(v.mean()), se


def continuous_bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x | lambda) per pixel of the continuous Bernoulli, lambda = sigmoid(logits) (Loaiza-Ganem
    and Cunningham, 2019): p(x | lambda) = C(lambda) lambda^x (1 - lambda)^(1 - x) on [0, 1].

    With C = eta / tanh(eta / 2) in the logit eta, log lambda^x (1 - lambda)^(1 - x) + log C
    simplifies to (x - 1/2) eta - log(sinh(eta / 2) / (eta / 2)), and for t = |eta|,
    log(sinh(t / 2) / (t / 2)) = t / 2 + log((1 - exp(-t)) / t): no overflow, and one exp and one
    log per pixel instead of the Bernoulli cross-entropy plus a normaliser (the IWAE scores 784
    pixels of K x N samples). At t -> 0 the ratio tends to 1; t is floored at 1e-20 so 0 / 0
    never occurs.
    """
    import torch  # deferred: see the note at the imports

    t = logits.abs().clamp_min(1e-20)
    return (x - 0.5) * logits - 0.5 * t - torch.log(-torch.expm1(-t) / t)


def continuous_bernoulli_mean(logits: torch.Tensor) -> torch.Tensor:
    """E[x] under the continuous Bernoulli: lambda / (2 lambda - 1) + 1 / (2 artanh(1 - 2 lambda)),
    which is 1 / (1 - exp(-eta)) - 1 / eta in the logit eta (1/2 + eta / 12 near eta = 0)."""
    import torch  # deferred: see the note at the imports

    small = logits.abs() < SMALL_LOGIT
    safe = torch.where(small, torch.ones_like(logits), logits)
    exact = -1.0 / torch.expm1(-safe) - 1.0 / safe
    return torch.where(small, 0.5 + logits / 12, exact)
