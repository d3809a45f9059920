"""Factor analysis over pixel values (scikit-learn's FactorAnalysis) as a pml-ops density family.

x = W z + mu + eps with z ~ N(0, I_M) and eps ~ N(0, diag(psi)): an exact Gaussian density over
[0, 1]^784. Each pixel's noise variance is floored at `min_noise_variance` (the always-black
border pixels have none), as the GMM's `reg_covar` does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pml_ops.config import PositiveFloat, PositiveInt, Section
from pml_ops.density import artifact, figures
from pml_ops.density.family import Family, ModelSettings
from pml_ops.density.interface import FigureInputs, FitCallbacks

ARRAYS = ("components", "mean", "noise_variance")


class FaParams(Section):
    latent_dim: PositiveInt
    max_iter: PositiveInt
    min_noise_variance: PositiveFloat


class FactorAnalysisDensity:
    family = "fa"
    objective = "exact log-likelihood"
    observation = "Gaussian density over pixel values in [0, 1] (x = Wz + mu + N(0, diag(psi)))"
    normalised = True

    def __init__(self, params: FaParams, seed: int, name: str = "fa") -> None:
        self.params, self.seed, self.name, self.latent_dim = params, seed, name, params.latent_dim
        self.fa_: Any = None
        self.train_metrics_: dict[str, Any] = {}
        self.history_: list[dict[str, Any]] = []

    def fit(self, split: Any, callbacks: FitCallbacks) -> FactorAnalysisDensity:
        from sklearn.decomposition import FactorAnalysis

        from pml_ops.density.data import to_unit_float

        x_train, x_val = to_unit_float(split.x_train), to_unit_float(split.x_val)
        fitted = FactorAnalysis(self.latent_dim, max_iter=self.params.max_iter, random_state=self.seed)
        self.fa_ = fitted.fit(x_train)
        self.fa_.noise_variance_ = np.maximum(self.fa_.noise_variance_, self.params.min_noise_variance)
        self.train_metrics_ = {
            "train_log_likelihood": float(np.mean(self.log_density(x_train))),
            "val_log_likelihood": float(np.mean(self.log_density(x_val))),
            "em_iterations": int(self.fa_.n_iter_),
        }
        return self

    def log_density(self, x: np.ndarray) -> np.ndarray:
        return self.fa_.score_samples(x)

    def encode(self, x: np.ndarray) -> np.ndarray:
        """The posterior mean of z."""
        return self.fa_.transform(x)

    def decode(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(z) @ self.fa_.components_ + self.fa_.mean_

    def reconstruct(self, x: np.ndarray, sample: bool, seed: int) -> np.ndarray:
        z = self.encode(x)
        if sample:  # p(z | x) = N(mean, (I + W psi^-1 W^T)^-1)
            w = self.fa_.components_
            cov = np.linalg.inv(np.eye(self.latent_dim) + (w / self.fa_.noise_variance_) @ w.T)
            z = z + np.random.default_rng(seed).standard_normal(z.shape) @ np.linalg.cholesky(cov).T
        return self.decode(z)

    def sample(self, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        noise = np.sqrt(self.fa_.noise_variance_) * rng.standard_normal((n, len(self.fa_.mean_)))
        return self.decode(rng.standard_normal((n, self.latent_dim))) + noise

    def hyperparameters(self) -> dict[str, Any]:
        return self.params.model_dump()

    def run_params(self) -> dict[str, Any]:
        return {}

    def save(self, path: Path) -> None:
        arrays = {key: getattr(self.fa_, f"{key}_") for key in ARRAYS}
        artifact.save_npz(path, artifact.header(self.family, self.hyperparameters()), arrays)

    @classmethod
    def load(cls, path: Path, settings: ModelSettings, expected: dict[str, Any] | None) -> Any:
        from sklearn.decomposition import FactorAnalysis

        head, arrays = artifact.load_npz(path, settings.name, cls.family, expected)
        model = cls(FaParams(**head["hyperparameters"]), settings.seed, settings.name)
        model.fa_ = FactorAnalysis(model.latent_dim)
        for key in ARRAYS:
            setattr(model.fa_, f"{key}_", arrays[key])
        model.fa_.n_features_in_ = len(arrays["mean"])
        return model

    def figures(self, inputs: FigureInputs) -> list[Path]:
        return figures.latent_figures(self, inputs)


def _create(section: FaParams, settings: ModelSettings) -> FactorAnalysisDensity:
    return FactorAnalysisDensity(section, settings.seed, settings.name)


fa = Family(
    name="fa",
    section=FaParams,
    suffix=".npz",
    create=_create,
    load=FactorAnalysisDensity.load,
    note="FA: the exact log-likelihood of a Gaussian over [0, 1]^784 (normalised: exact bits/dim)",
)
