"""Test-set metrics for any `DensityModel`, and the comparison rows of all models (Table 1's
data; `pml_ops.report.density_table` renders it).

Every column is scored on the same test images and carries its standard error over images (and,
for the sampled ELBO and IWAE, its Monte Carlo error). The IWAE is costly, so it may run on the
first `evaluate.iwae_images` test images; every model's score and bits/dim are then also given on
exactly that subset, beside the all-images score.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pml_ops.config import EvaluateParams
from pml_ops.core.progress import progress
from pml_ops.density.interface import DensityModel, ImportanceWeightedModel, LatentDensityModel
from pml_ops.density.units import bits_per_dim, mean_and_se

IWAE_SLICE = 100  # images per progress step of the IWAE


def per_image_mse(images: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    """Per-pixel mean squared error of each image in [0, 1] against its decoder mean."""
    return np.mean((images.astype(np.float64) - reconstructions) ** 2, axis=1)


def reconstruction_mse(images: np.ndarray, reconstructions: np.ndarray) -> float:
    """Per-pixel mean squared error between images in [0, 1] and decoder means."""
    return float(np.mean(per_image_mse(images, reconstructions)))


def knn_accuracy(
    train_latent: np.ndarray, y_train: np.ndarray, test_latent: np.ndarray, y_test, k: int
) -> float:
    """Test accuracy of a k-nearest-neighbour classifier fit on training latent means."""
    # deferred: ~1.5 s at import; the compare stage imports this module for `comparison_rows` alone
    from sklearn.neighbors import KNeighborsClassifier

    return float(KNeighborsClassifier(n_neighbors=k).fit(train_latent, y_train).score(test_latent, y_test))


def batched_iwae(
    model: ImportanceWeightedModel, x: np.ndarray, params: EvaluateParams, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """IWAE bound per test image and its Monte Carlo variance, in slices of IWAE_SLICE images so
    progress shows (the model batches each slice within its memory budget)."""
    step = IWAE_SLICE
    parts = [
        model.iwae_with_variance(x[start : start + step], params.iwae_samples, seed + start)
        for start in progress(range(0, len(x), step), desc=f"{model.name} IWAE K={params.iwae_samples}")
    ]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _with_se(metrics: dict[str, Any], key: str, values: np.ndarray) -> None:
    metrics[key], metrics[f"{key}_se"] = mean_and_se(values)


def _mc_se(variances: np.ndarray) -> float:
    """Monte Carlo standard error of a mean of independent per-image estimates."""
    return float(math.sqrt(max(float(np.sum(variances)), 0.0)) / len(variances))


def _sampled_scores(
    metrics: dict[str, Any],
    model: ImportanceWeightedModel,
    x_test: np.ndarray,
    scores: np.ndarray,
    n_subset: int,
    params: EvaluateParams,
    seed: int,
    dequantised: bool,
) -> None:
    """A sampled bound's Monte Carlo errors of its single-sample scores `scores`, and its IWAE on the first
    `n_subset` images unless it is scored at the `dequantised` points instead."""
    # Two independent single-sample ELBOs per image: (e1 - e2)^2 / 2 estimates each one's variance.
    again = model.log_density(x_test, seed + 1)
    metrics["test_score_mc_se"] = _mc_se((scores - again) ** 2 / 2)
    metrics["subset_score_mc_se"] = _mc_se((scores[:n_subset] - again[:n_subset]) ** 2 / 2)
    if not (model.normalised and dequantised):
        # A normalised decoder's IWAE runs once, at the dequantised points (its bits/dim below):
        # its density at the grey levels k/255, where it was not trained, ranks nothing.
        bounds, variances = batched_iwae(model, x_test[:n_subset], params, seed)
        _with_se(metrics, "test_iwae", bounds)
        metrics["test_iwae_mc_se"] = _mc_se(variances)
        _with_se(metrics, "iwae_gap", bounds - scores[:n_subset])  # paired: the bound gap alone
    metrics["iwae_samples"] = params.iwae_samples
    metrics["iwae_images"] = n_subset


def _bits_per_dim(
    metrics: dict[str, Any], model: DensityModel, points: np.ndarray, params: EvaluateParams, seed: int
) -> None:
    """Bits per dimension at the dequantised `points`: exact, or a sampled bound's IWAE."""
    dims = points.shape[1]
    if isinstance(model, ImportanceWeightedModel):
        log_p, variances = batched_iwae(model, points, params, seed)
        metrics["bits_per_dim_mc_se"] = _mc_se(variances) / (dims * math.log(2))
        metrics["bits_per_dim_estimate"] = f"IWAE K={params.iwae_samples} (an upper bound)"
    else:
        log_p = model.log_density(points)
        exact = model.objective == "exact log-likelihood"
        metrics["bits_per_dim_estimate"] = "exact" if exact else model.objective
    _with_se(metrics, "bits_per_dim", bits_per_dim(log_p, dims))


def _latent_metrics(
    metrics: dict[str, Any],
    model: LatentDensityModel,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    params: EvaluateParams,
    seed: int,
) -> None:
    """Reconstruction errors, and the k-NN accuracy of the latent means."""
    for key, sample in (("test_mse_posterior_sample", True), ("test_mse_posterior_mean", False)):
        _with_se(metrics, key, per_image_mse(x_test, model.reconstruct(x_test, sample, seed)))
    accuracy = knn_accuracy(
        model.encode(x_train), y_train, model.encode(x_test), y_test, params.knn_neighbors
    )
    metrics["test_knn_accuracy"] = accuracy
    metrics["test_knn_accuracy_se"] = math.sqrt(accuracy * (1 - accuracy) / len(x_test))
    metrics["knn_neighbors"] = params.knn_neighbors


def evaluate_model(
    model: DensityModel,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    params: EvaluateParams,
    seed: int,
    x_dequantised: np.ndarray | None = None,
) -> dict[str, Any]:
    """Every metric that applies to `model` on the test set (images (N, 784) in [0, 1]).

    `x_dequantised` is the same test images dequantised (`units.dequantise`), the points where a
    normalised model's bits/dim are scored; without it no bits/dim are computed. Each mean comes
    with `<key>_se`, its standard error over images; sampled scores also with `<key>_mc_se`.
    """
    n_subset = len(x_test) if params.iwae_images is None else min(params.iwae_images, len(x_test))
    metrics: dict[str, Any] = {
        "model": model.name,
        "objective": model.objective,
        "observation": model.observation,
        "normalised": model.normalised,
        "units": "nats per image",
        "test_images": len(x_test),
        "subset_images": n_subset,
    }
    scores = model.log_density(x_test)
    _with_se(metrics, "test_score", scores)
    _with_se(metrics, "subset_score", scores[:n_subset])
    if isinstance(model, ImportanceWeightedModel):
        _sampled_scores(metrics, model, x_test, scores, n_subset, params, seed, x_dequantised is not None)
    if model.normalised and x_dequantised is not None:
        _bits_per_dim(metrics, model, x_dequantised[:n_subset], params, seed)
    if isinstance(model, LatentDensityModel):
        _latent_metrics(metrics, model, x_train, y_train, x_test, y_test, params, seed)
    return metrics


def comparison_rows(train: dict[str, dict], evaluation: dict[str, dict]) -> list[dict[str, Any]]:
    """One row per model: its evaluation metrics plus the wall time of both stages."""
    rows = []
    for name, metrics in evaluation.items():
        row = {key: value for key, value in metrics.items() if key != "wall_time_s"}
        row["train_wall_time_s"] = train.get(name, {}).get("wall_time_s")
        row["evaluate_wall_time_s"] = metrics.get("wall_time_s")
        rows.append(row)
    return rows
