"""The one interface every density model offers to evaluation and figures.

Images are float arrays (N, 784) with pixel values in [0, 1]; scores are nats per image.
`DensityModel` is what all four models share; `LatentDensityModel` adds the continuous latent
space (VAE, CVAE, PPCA); the GMM adds component means and per-component samples instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    import torch

    from pml_ops.density.vae import VAE

SCORE_BATCH = 2048


@runtime_checkable
class DensityModel(Protocol):
    name: str
    objective: str  # "ELBO" (a lower bound) or "exact log-likelihood"
    observation: str  # the observation model, stated beside every score

    def log_density(self, x: np.ndarray) -> np.ndarray: ...

    def sample(self, n: int, seed: int) -> np.ndarray: ...


@runtime_checkable
class LatentDensityModel(DensityModel, Protocol):
    latent_dim: int

    def encode(self, x: np.ndarray) -> np.ndarray: ...

    def decode(self, z: np.ndarray) -> np.ndarray: ...

    def reconstruct(self, x: np.ndarray, sample: bool, seed: int) -> np.ndarray: ...


class VaeDensity:
    """A trained `VAE` seen through the numpy interface; every method runs in inference mode on
    `device`, in batches."""

    objective = "ELBO"
    observation = "Bernoulli decoder with pixel values in [0, 1] as targets (continuous BCE)"

    def __init__(self, name: str, model: VAE, device: torch.device) -> None:
        self.name = name
        self.model = model.to(device).eval()
        self.device = device
        self.latent_dim = model.latent_dim

    def _batches(self, x: np.ndarray, batch: int = SCORE_BATCH):
        import torch

        for start in range(0, len(x), batch):
            chunk = torch.from_numpy(np.ascontiguousarray(x[start : start + batch], dtype=np.float32))
            yield chunk.to(self.device).reshape(-1, 1, 28, 28)

    def _generator(self, seed: int):
        import torch

        return torch.Generator(device=self.device).manual_seed(seed)

    def log_density(self, x: np.ndarray, seed: int = 0) -> np.ndarray:
        """Single-sample ELBO per image (a stochastic lower bound on log p(x))."""
        import torch

        generator = self._generator(seed)
        with torch.inference_mode():
            return np.concatenate([self.model.elbo(b, generator).cpu().numpy() for b in self._batches(x)])

    def iwae(self, x: np.ndarray, k: int, chunk: int, seed: int = 0) -> np.ndarray:
        """Importance-weighted bound with K = k per image, at most `chunk` images x samples at once."""
        import torch

        generator = self._generator(seed)
        images = max(1, chunk // k)
        with torch.inference_mode():
            return np.concatenate(
                [self.model.iwae(b, k, generator).cpu().numpy() for b in self._batches(x, images)]
            )

    def encode(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return np.concatenate([self.model.posterior(b)[0].cpu().numpy() for b in self._batches(x)])

    def decode(self, z: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            latent = torch.from_numpy(np.asarray(z, dtype=np.float32)).to(self.device)
            return self.model.decode(latent).reshape(len(z), -1).cpu().numpy()

    def reconstruct(self, x: np.ndarray, sample: bool, seed: int) -> np.ndarray:
        """Decoder mean at the posterior mean, or at one posterior sample."""
        import torch

        generator = self._generator(seed)
        out = []
        with torch.inference_mode():
            for b in self._batches(x):
                mean, logvar = self.model.posterior(b)
                if sample:
                    eps = torch.randn(mean.shape, generator=generator, device=self.device)
                    mean = mean + torch.exp(0.5 * logvar) * eps
                out.append(self.model.decode(mean).reshape(len(b), -1).cpu().numpy())
        return np.concatenate(out)

    def sample(self, n: int, seed: int) -> np.ndarray:
        """Decoder means at prior samples (the usual way to show VAE samples)."""
        z = np.random.default_rng(seed).standard_normal((n, self.latent_dim))
        return self.decode(z)
