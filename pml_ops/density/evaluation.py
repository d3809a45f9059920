"""Test-set metrics for any `DensityModel`, and the comparison table of all models."""

from __future__ import annotations

from typing import Any

import numpy as np

from pml_ops.config import EvaluateParams
from pml_ops.density.interface import DensityModel, LatentDensityModel, VaeDensity
from pml_ops.progress import progress


def reconstruction_mse(images: np.ndarray, reconstructions: np.ndarray) -> float:
    """Per-pixel mean squared error between images in [0, 1] and decoder means."""
    return float(np.mean((images.astype(np.float64) - reconstructions) ** 2))


def knn_accuracy(
    train_latent: np.ndarray, y_train: np.ndarray, test_latent: np.ndarray, y_test, k: int
) -> float:
    """Test accuracy of a k-nearest-neighbour digit classifier fit on training latent means."""
    from sklearn.neighbors import KNeighborsClassifier

    return float(KNeighborsClassifier(n_neighbors=k).fit(train_latent, y_train).score(test_latent, y_test))


def batched_iwae(model: VaeDensity, x: np.ndarray, params: EvaluateParams, seed: int) -> np.ndarray:
    """IWAE bound per test image, in slices so progress shows and memory stays bounded."""
    step = max(1, params.iwae_chunk // params.iwae_samples) * 8
    parts = [
        model.iwae(x[start : start + step], params.iwae_samples, params.iwae_chunk, seed + start)
        for start in progress(range(0, len(x), step), desc=f"{model.name} IWAE K={params.iwae_samples}")
    ]
    return np.concatenate(parts)


def evaluate_model(
    model: DensityModel,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    params: EvaluateParams,
    seed: int,
) -> dict[str, Any]:
    """Every metric that applies to `model` on the test set (images (N, 784) in [0, 1])."""
    scores = model.log_density(x_test)
    metrics: dict[str, Any] = {
        "model": model.name,
        "objective": model.objective,
        "observation": model.observation,
        "units": "nats per image",
        "test_images": len(x_test),
        "test_score": float(np.mean(scores)),
    }
    if isinstance(model, VaeDensity):
        metrics["test_iwae"] = float(np.mean(batched_iwae(model, x_test, params, seed)))
        metrics["iwae_samples"] = params.iwae_samples
    if isinstance(model, LatentDensityModel):
        metrics["test_mse_posterior_sample"] = reconstruction_mse(
            x_test, model.reconstruct(x_test, True, seed)
        )
        metrics["test_mse_posterior_mean"] = reconstruction_mse(
            x_test, model.reconstruct(x_test, False, seed)
        )
        metrics["test_knn_accuracy"] = knn_accuracy(
            model.encode(x_train), y_train, model.encode(x_test), y_test, params.knn_neighbors
        )
        metrics["knn_neighbors"] = params.knn_neighbors
    return metrics


COLUMNS = [
    ("model", "model"),
    ("objective", "test objective"),
    ("test_score", "test score (nats/image)"),
    ("test_iwae", "IWAE log p(x) (nats/image)"),
    ("test_mse_posterior_sample", "MSE (posterior sample)"),
    ("test_mse_posterior_mean", "MSE (posterior mean)"),
    ("test_knn_accuracy", "5-NN accuracy (latent)"),
    ("train_wall_time_s", "train time (s)"),
    ("evaluate_wall_time_s", "evaluate time (s)"),
    ("observation", "observation model"),
]


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1 else f"{value:.1f}"
    return str(value)


def comparison_rows(train: dict[str, dict], evaluation: dict[str, dict]) -> list[dict[str, Any]]:
    """One row per model: its evaluation metrics plus the wall time of both stages."""
    rows = []
    for name, metrics in evaluation.items():
        row = {key: metrics.get(key) for key, _ in COLUMNS}
        row["train_wall_time_s"] = train.get(name, {}).get("wall_time_s")
        row["evaluate_wall_time_s"] = metrics.get("wall_time_s")
        rows.append(row)
    return rows


def comparison_markdown(rows: list[dict[str, Any]]) -> str:
    header = "| " + " | ".join(title for _, title in COLUMNS) + " |"
    rule = "|" + "---|" * len(COLUMNS)
    body = ["| " + " | ".join(_cell(row.get(key)) for key, _ in COLUMNS) + " |" for row in rows]
    note = (
        "\nScores are means over the test set in nats per image. ELBO and IWAE (VAE, CVAE) use a "
        "Bernoulli decoder with pixel values in [0, 1] as targets; PPCA and GMM scores are exact "
        "Gaussian densities over pixel values, so the two groups are not on a common scale. MSE is "
        "per pixel, images in [0, 1], against the decoder mean.\n"
    )
    return "\n".join([header, rule, *body]) + "\n" + note
