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

    def save(self, path) -> None:
        """Store the fitted parameters as plain arrays (.npz): loading runs no pickled code."""
        m = self.mixture
        with open(path, "wb") as fh:
            np.savez(
                fh,
                covariance_type=np.array(m.covariance_type),
                weights=m.weights_,
                means=m.means_,
                covariances=m.covariances_,
                precisions_cholesky=m.precisions_cholesky_,
            )

    @classmethod
    def load(cls, path) -> GMM:
        """Rebuild a fitted GaussianMixture from `save`'s arrays (no pickle)."""
        from sklearn.mixture import GaussianMixture

        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        kind = str(arrays["covariance_type"])
        mixture = GaussianMixture(n_components=len(arrays["weights"]), covariance_type=kind)
        mixture.weights_ = arrays["weights"]
        mixture.means_ = arrays["means"]
        mixture.covariances_ = arrays["covariances"]
        mixture.precisions_cholesky_ = arrays["precisions_cholesky"]
        chol = mixture.precisions_cholesky_
        if kind == "full":
            mixture.precisions_ = np.einsum("kij,klj->kil", chol, chol)
        elif kind == "tied":
            mixture.precisions_ = chol @ chol.T
        else:
            mixture.precisions_ = chol**2
        mixture.converged_ = True
        mixture.n_features_in_ = mixture.means_.shape[1]
        return cls(mixture)

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
