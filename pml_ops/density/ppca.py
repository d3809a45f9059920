"""Probabilistic PCA, fitted in closed form (Tipping and Bishop, 1999).

x = W z + mu + eps with z ~ N(0, I_M), eps ~ N(0, sigma^2 I_D). Maximum likelihood:
mu is the sample mean, sigma^2 the mean of the D - M smallest eigenvalues of the sample
covariance S, and W = U_M (L_M - sigma^2 I)^(1/2) with U_M, L_M the leading eigenvectors and
eigenvalues of S (rotation R = I). Log-likelihoods are exact Gaussian densities over pixel values,
with covariance C = W W^T + sigma^2 I evaluated through the M x M matrix M = W^T W + sigma^2 I.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pml_ops.errors import ConfigError

LOG_2PI = float(np.log(2 * np.pi))


@dataclass(frozen=True)
class PPCA:
    W: np.ndarray  # (D, M)
    mu: np.ndarray  # (D,)
    sigma2: float

    name = "ppca"
    objective = "exact log-likelihood"
    observation = "Gaussian density over pixel values in [0, 1] (x = Wz + mu + N(0, sigma^2 I))"

    @classmethod
    def fit(cls, x: np.ndarray, latent_dim: int) -> PPCA:
        n, d = x.shape
        if not 0 < latent_dim < d:
            raise ConfigError(f"ppca.latent_dim: must be between 1 and {d - 1}, got {latent_dim}")
        x64 = x.astype(np.float64)
        mu = x64.mean(0)
        centred = x64 - mu
        cov = centred.T @ centred / n
        eigvals, eigvecs = np.linalg.eigh(cov)  # ascending
        eigvals, eigvecs = eigvals[::-1], eigvecs[:, ::-1]
        sigma2 = float(eigvals[latent_dim:].mean())
        scale = np.sqrt(np.maximum(eigvals[:latent_dim] - sigma2, 0.0))
        return cls(W=eigvecs[:, :latent_dim] * scale, mu=mu, sigma2=sigma2)

    @property
    def latent_dim(self) -> int:
        return self.W.shape[1]

    def _m(self) -> np.ndarray:
        return self.W.T @ self.W + self.sigma2 * np.eye(self.latent_dim)

    def log_density(self, x: np.ndarray) -> np.ndarray:
        """Exact log N(x | mu, W W^T + sigma^2 I) per row, in nats (Woodbury identity)."""
        d, m = self.W.shape
        centred = x.astype(np.float64) - self.mu
        m_mat = self._m()
        projected = centred @ self.W  # (N, M)
        quad = (
            np.sum(centred**2, 1) - np.sum(projected * np.linalg.solve(m_mat, projected.T).T, 1)
        ) / self.sigma2
        logdet = (d - m) * np.log(self.sigma2) + np.linalg.slogdet(m_mat)[1]
        return -0.5 * (d * LOG_2PI + logdet + quad)

    def posterior(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """p(z | x) = N(M^-1 W^T (x - mu), sigma^2 M^-1): means (N, M) and the shared covariance."""
        m_inv = np.linalg.inv(self._m())
        return (x.astype(np.float64) - self.mu) @ self.W @ m_inv.T, self.sigma2 * m_inv

    def encode(self, x: np.ndarray) -> np.ndarray:
        return self.posterior(x)[0]

    def decode(self, z: np.ndarray) -> np.ndarray:
        """Mean of p(x | z) = W z + mu."""
        return z @ self.W.T + self.mu

    def reconstruct(self, x: np.ndarray, sample: bool, seed: int) -> np.ndarray:
        """Decoder mean at the posterior mean, or at one posterior sample."""
        mean, cov = self.posterior(x)
        if sample:
            rng = np.random.default_rng(seed)
            mean = mean + rng.standard_normal(mean.shape) @ np.linalg.cholesky(cov).T
        return self.decode(mean)

    def sample(self, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((n, self.latent_dim))
        return self.decode(z) + np.sqrt(self.sigma2) * rng.standard_normal((n, len(self.mu)))

    def save(self, path) -> None:
        from pml_ops.io import atomic_path

        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, W=self.W, mu=self.mu, sigma2=np.array(self.sigma2))

    @classmethod
    def load(cls, path) -> PPCA:
        with np.load(path, allow_pickle=False) as npz:
            return cls(W=npz["W"], mu=npz["mu"], sigma2=float(npz["sigma2"]))
