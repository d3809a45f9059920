"""Gaussian mixture model over pixel values (scikit-learn's GaussianMixture)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pml_ops.config import GmmParams

if TYPE_CHECKING:
    from sklearn.mixture import GaussianMixture


@dataclass(frozen=True)
class GMM:
    mixture: GaussianMixture

    name = "gmm"
    objective = "exact log-likelihood"
    observation = "Gaussian-mixture density over pixel values in [0, 1]"

    @classmethod
    def fit(cls, x: np.ndarray, params: GmmParams, seed: int) -> GMM:
        from sklearn.mixture import GaussianMixture

        mixture = GaussianMixture(
            n_components=params.n_components,
            covariance_type=params.covariance_type,
            reg_covar=params.reg_covar,
            max_iter=params.max_iter,
            n_init=params.n_init,
            random_state=seed,
        )
        return cls(mixture.fit(x))

    def log_density(self, x: np.ndarray) -> np.ndarray:
        return self.mixture.score_samples(x)

    def component_means(self) -> np.ndarray:
        return self.mixture.means_

    def component_covariance(self, k: int) -> np.ndarray:
        """The full (D, D) covariance of component k, whatever the covariance type."""
        cov, kind = self.mixture.covariances_, self.mixture.covariance_type
        d = self.mixture.means_.shape[1]
        if kind == "full":
            return cov[k]
        if kind == "tied":
            return cov
        if kind == "diag":
            return np.diag(cov[k])
        return np.eye(d) * cov[k]

    def sample_component(self, k: int, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        chol = np.linalg.cholesky(self.component_covariance(k))
        return self.mixture.means_[k] + rng.standard_normal((n, chol.shape[0])) @ chol.T

    def sample(self, n: int, seed: int) -> np.ndarray:
        counts = np.random.default_rng(seed).multinomial(n, self.mixture.weights_)
        return np.concatenate([self.sample_component(k, c, seed + 1 + k) for k, c in enumerate(counts)])
