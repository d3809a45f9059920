"""Probabilistic PCA, fitted in closed form (Tipping and Bishop, 1999).

x = W z + mu + eps with z ~ N(0, I_M), eps ~ N(0, sigma^2 I_D). Maximum likelihood:
mu is the sample mean, sigma^2 the mean of the D - M smallest eigenvalues of the sample
covariance S, and W = U_M (L_M - sigma^2 I)^(1/2) with U_M, L_M the leading eigenvectors and
eigenvalues of S (rotation R = I). Log-likelihoods are exact Gaussian densities over pixel values,
with covariance C = W W^T + sigma^2 I evaluated through the M x M matrix M = W^T W + sigma^2 I.
`ppca` is the `Family` object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pml_ops.config import PpcaParams
from pml_ops.core.errors import ConfigError
from pml_ops.density import artifact, figures
from pml_ops.density.data import DensitySplit, to_unit_float
from pml_ops.density.family import Family, ModelSettings
from pml_ops.density.interface import FigureInputs, FitCallbacks

LOG_2PI = float(np.log(2 * np.pi))


class PPCA:
    family = "ppca"
    objective = "exact log-likelihood"
    observation = "Gaussian density over pixel values in [0, 1] (x = Wz + mu + N(0, sigma^2 I))"
    normalised = True

    def __init__(self, latent_dim: int, name: str = "ppca") -> None:
        self.latent_dim, self.name = latent_dim, name
        self.W_ = np.empty((0, latent_dim))  # (D, M)
        self.mu_ = np.empty(0)  # (D,)
        self.sigma2_ = float("nan")
        self.train_metrics_: dict[str, Any] = {}
        self.history_: list[dict[str, Any]] = []

    def fit_pixels(self, x: np.ndarray) -> PPCA:
        """The maximum-likelihood W, mu and sigma^2 for images `x` (N, D)."""
        n, d = x.shape
        if not 0 < self.latent_dim < d:
            raise ConfigError(f"ppca.latent_dim: must be between 1 and {d - 1}, got {self.latent_dim}")
        x64 = x.astype(np.float64)
        mu = x64.mean(0)
        centred = x64 - mu
        cov = centred.T @ centred / n
        eigvals, eigvecs = np.linalg.eigh(cov)  # ascending
        eigvals, eigvecs = eigvals[::-1], eigvecs[:, ::-1]
        self.sigma2_ = float(eigvals[self.latent_dim :].mean())
        scale = np.sqrt(np.maximum(eigvals[: self.latent_dim] - self.sigma2_, 0.0))
        self.W_, self.mu_ = eigvecs[:, : self.latent_dim] * scale, mu
        return self

    def fit(self, split: DensitySplit, callbacks: FitCallbacks) -> PPCA:
        x_train, x_val = to_unit_float(split.x_train), to_unit_float(split.x_val)
        self.fit_pixels(x_train)
        self.train_metrics_ = {
            "train_log_likelihood": float(np.mean(self.log_density(x_train))),
            "val_log_likelihood": float(np.mean(self.log_density(x_val))),
            "sigma2": self.sigma2_,
        }
        return self

    def _m(self) -> np.ndarray:
        return self.W_.T @ self.W_ + self.sigma2_ * np.eye(self.latent_dim)

    def log_density(self, x: np.ndarray) -> np.ndarray:
        """Exact log N(x | mu, W W^T + sigma^2 I) per row, in nats (Woodbury identity)."""
        d, m = self.W_.shape
        centred = x.astype(np.float64) - self.mu_
        m_mat = self._m()
        projected = centred @ self.W_  # (N, M)
        quad = (
            np.sum(centred**2, 1) - np.sum(projected * np.linalg.solve(m_mat, projected.T).T, 1)
        ) / self.sigma2_
        logdet = (d - m) * np.log(self.sigma2_) + np.linalg.slogdet(m_mat)[1]
        return -0.5 * (d * LOG_2PI + logdet + quad)

    def posterior(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """p(z | x) = N(M^-1 W^T (x - mu), sigma^2 M^-1): means (N, M) and the shared covariance."""
        m_inv = np.linalg.inv(self._m())
        return (x.astype(np.float64) - self.mu_) @ self.W_ @ m_inv.T, self.sigma2_ * m_inv

    def encode(self, x: np.ndarray) -> np.ndarray:
        return self.posterior(x)[0]

    def decode(self, z: np.ndarray) -> np.ndarray:
        """Mean of p(x | z) = W z + mu."""
        return z @ self.W_.T + self.mu_

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
        return self.decode(z) + np.sqrt(self.sigma2_) * rng.standard_normal((n, len(self.mu_)))

    def run_params(self) -> dict[str, Any]:
        return {}

    def hyperparameters(self) -> dict[str, Any]:
        return {"latent_dim": self.latent_dim}

    def save(self, path: Path) -> None:
        arrays = {"W": self.W_, "mu": self.mu_, "sigma2": np.array(self.sigma2_)}
        artifact.save_npz(path, artifact.header(self.family, self.hyperparameters()), arrays)

    @classmethod
    def load(cls, path: Path, name: str = "ppca", expected: dict[str, Any] | None = None) -> PPCA:
        """The model saved at `path`; refused when `expected` hyperparameters are given and differ."""
        head, arrays = artifact.load_npz(path, name, cls.family, expected)
        model = cls(name=name, **head["hyperparameters"])
        model.W_, model.mu_, model.sigma2_ = arrays["W"], arrays["mu"], float(arrays["sigma2"])
        return model

    def figures(self, inputs: FigureInputs) -> list[Path]:
        return figures.latent_figures(self, inputs)


def _create(section: PpcaParams, settings: ModelSettings) -> PPCA:
    return PPCA(section.latent_dim, settings.name)


def _load(path: Path, settings: ModelSettings, expected: dict[str, Any] | None) -> PPCA:
    return PPCA.load(path, settings.name, expected)


ppca = Family(
    name="ppca",
    section=PpcaParams,
    suffix=".npz",
    create=_create,
    load=_load,
    note="PPCA: the exact log-likelihood of a Gaussian density over [0, 1]^784 (normalised: exact bits/dim)",
)
