"""Gaussian mixture model over pixel values (scikit-learn's GaussianMixture); `gmm` is the
`Family` object."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pml_ops.config import DensityParams, GmmParams
from pml_ops.density import artifact, figures
from pml_ops.density.data import DensitySplit, to_unit_float
from pml_ops.density.family import Family, ModelSettings
from pml_ops.density.interface import FigureInputs, FitCallbacks

if TYPE_CHECKING:
    from sklearn.mixture import GaussianMixture

# scikit-learn's mixture module (~1.7 s at import) is imported where it is used: the registry imports
# this module in every density stage, the comparison and the report; only the GMM's stages need it.

ARRAYS = ("weights", "means", "covariances", "precisions_cholesky")


class GMM:
    family = "gmm"
    objective = "exact log-likelihood"
    observation = "Gaussian-mixture density over pixel values in [0, 1]"
    normalised = True

    def __init__(self, params: GmmParams, seed: int, name: str = "gmm") -> None:
        self.params, self.seed, self.name = params, seed, name
        self.mixture_: GaussianMixture | None = None
        self.train_metrics_: dict[str, Any] = {}
        self.history_: list[dict[str, Any]] = []

    @property
    def mixture(self) -> GaussianMixture:
        if self.mixture_ is None:
            raise RuntimeError(f"{self.name}: not fitted; call fit() or load() first")
        return self.mixture_

    def fit_pixels(self, x: np.ndarray) -> GMM:
        from sklearn.mixture import GaussianMixture  # deferred: see the note at the imports

        self.mixture_ = GaussianMixture(
            n_components=self.params.n_components,
            covariance_type=self.params.covariance_type,
            reg_covar=self.params.reg_covar,
            max_iter=self.params.max_iter,
            n_init=self.params.n_init,
            random_state=self.seed,
        ).fit(x)
        return self

    def fit(self, split: DensitySplit, callbacks: FitCallbacks) -> GMM:
        x_train, x_val = to_unit_float(split.x_train), to_unit_float(split.x_val)
        self.fit_pixels(x_train)
        self.train_metrics_ = {
            "train_log_likelihood": float(np.mean(self.log_density(x_train))),
            "val_log_likelihood": float(np.mean(self.log_density(x_val))),
            "converged": int(self.mixture.converged_),  # 0/1: a number in `dvc metrics show`
            "em_iterations": int(self.mixture.n_iter_),
        }
        return self

    def run_params(self) -> dict[str, Any]:
        return {}

    def hyperparameters(self) -> dict[str, Any]:
        return self.params.model_dump()

    def save(self, path: Path) -> None:
        """The fitted parameters as plain arrays (.npz): loading runs no pickled code."""
        m = self.mixture
        arrays = {key: getattr(m, f"{key}_") for key in ARRAYS}
        artifact.save_npz(path, artifact.header(self.family, self.hyperparameters()), arrays)

    @classmethod
    def load(
        cls, path: Path, name: str = "gmm", seed: int = 0, expected: dict[str, Any] | None = None
    ) -> GMM:
        """Rebuild a fitted GaussianMixture from `save`'s arrays (no pickle)."""
        from sklearn.mixture import GaussianMixture  # deferred: see the note at the imports

        head, arrays = artifact.load_npz(path, name, cls.family, expected)
        params = GmmParams(**head["hyperparameters"])
        kind = params.covariance_type
        mixture = GaussianMixture(n_components=len(arrays["weights"]), covariance_type=kind)
        for key in ARRAYS:
            setattr(mixture, f"{key}_", arrays[key])
        chol = mixture.precisions_cholesky_
        if kind == "full":
            mixture.precisions_ = np.einsum("kij,klj->kil", chol, chol)
        elif kind == "tied":
            mixture.precisions_ = chol @ chol.T
        else:
            mixture.precisions_ = chol**2
        mixture.converged_ = True
        mixture.n_features_in_ = mixture.means_.shape[1]
        model = cls(params, seed, name)
        model.mixture_ = mixture
        return model

    def log_density(self, x: np.ndarray) -> np.ndarray:
        return self.mixture.score_samples(x)

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Posterior probability of each component per image (the mean of the one-hot latent)."""
        return self.mixture.predict_proba(x)

    def reconstruct(self, x: np.ndarray, sample: bool, seed: int) -> np.ndarray:
        """The component means weighted by their posterior probabilities, or (sample=True) the
        mean of one component drawn from the posterior."""
        weights = self.encode(x)
        if sample:
            rng = np.random.default_rng(seed)
            drawn = (weights.cumsum(1) > rng.random((len(x), 1))).argmax(1)
            return self.mixture.means_[drawn]
        return weights @ self.mixture.means_

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

    def figures(self, inputs: FigureInputs) -> list[Path]:
        """Component means, each beside samples drawn from it."""
        k, per = len(self.component_means()), inputs.params.samples_per_component
        samples = [self.sample_component(i, per, inputs.seed + i) for i in range(k)]
        return [
            figures.gmm_components(
                self.component_means(),
                samples,
                f"{self.name.upper()}: component means (left) and samples",
                inputs.out / "components.png",
            )
        ]


def fits_the_data(section: GmmParams, density: DensityParams) -> None:
    """EM needs at least one training image per component."""
    if density.subset.train is None:
        return
    n_train = density.subset.train - round(density.subset.train * density.validation_fraction)
    if section.n_components > n_train:
        raise ValueError(
            f"gmm.n_components: {section.n_components} components need at least as many "
            f"training images, density.subset.train leaves {n_train} after the validation split"
        )


def _create(section: GmmParams, settings: ModelSettings) -> GMM:
    return GMM(section, settings.seed, settings.name)


def _load(path: Path, settings: ModelSettings, expected: dict[str, Any] | None) -> GMM:
    return GMM.load(path, settings.name, settings.seed, expected)


gmm = Family(
    name="gmm",
    section=GmmParams,
    suffix=".npz",
    create=_create,
    load=_load,
    note=(
        "GMM: the exact log-likelihood of a Gaussian-mixture density over [0, 1]^784 "
        "(normalised: exact bits/dim)"
    ),
    validate=fits_the_data,
)
