"""Test-set metrics for any `DensityModel`, and the comparison table of all models."""

from __future__ import annotations

from typing import Any

import numpy as np

from pml_ops.config import EvaluateParams
from pml_ops.density.interface import DensityModel, LatentDensityModel
from pml_ops.density.vae_model import VaeModel
from pml_ops.progress import progress

IWAE_SLICE = 100  # images per progress step of the IWAE


def reconstruction_mse(images: np.ndarray, reconstructions: np.ndarray) -> float:
    """Per-pixel mean squared error between images in [0, 1] and decoder means."""
    return float(np.mean((images.astype(np.float64) - reconstructions) ** 2))


def knn_accuracy(
    train_latent: np.ndarray, y_train: np.ndarray, test_latent: np.ndarray, y_test, k: int
) -> float:
    """Test accuracy of a k-nearest-neighbour digit classifier fit on training latent means."""
    from sklearn.neighbors import KNeighborsClassifier

    return float(KNeighborsClassifier(n_neighbors=k).fit(train_latent, y_train).score(test_latent, y_test))


def batched_iwae(model: VaeModel, x: np.ndarray, params: EvaluateParams, seed: int) -> np.ndarray:
    """IWAE bound per test image, in slices of IWAE_SLICE images so progress shows (the model
    batches each slice within its memory budget)."""
    step = IWAE_SLICE
    parts = [
        model.iwae(x[start : start + step], params.iwae_samples, seed + start)
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
    if isinstance(model, VaeModel):
        x_iwae = x_test if params.iwae_images is None else x_test[: params.iwae_images]
        metrics["test_iwae"] = float(np.mean(batched_iwae(model, x_iwae, params, seed)))
        metrics["iwae_samples"] = params.iwae_samples
        metrics["iwae_images"] = len(x_iwae)
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


COLUMNS = [  # (metrics key, column title, format)
    ("model", "model", ""),
    ("objective", "test objective", ""),
    ("test_score", "test score (nats/image)", ".1f"),
    ("test_iwae", "IWAE log p(x) (nats/image)", ".1f"),
    ("test_mse_posterior_sample", "MSE (posterior sample)", ".4f"),
    ("test_mse_posterior_mean", "MSE (posterior mean)", ".4f"),
    ("test_knn_accuracy", "5-NN accuracy (latent)", ".4f"),
    ("train_wall_time_s", "train time (s)", ".1f"),
    ("evaluate_wall_time_s", "evaluate time (s)", ".1f"),
    ("observation", "observation model", ""),
]


def comparison_rows(train: dict[str, dict], evaluation: dict[str, dict]) -> list[dict[str, Any]]:
    """One row per model: its evaluation metrics plus the wall time of both stages."""
    rows = []
    for name, metrics in evaluation.items():
        row = {key: metrics.get(key) for key, _, _ in COLUMNS}
        row["train_wall_time_s"] = train.get(name, {}).get("wall_time_s")
        row["evaluate_wall_time_s"] = metrics.get("wall_time_s")
        rows.append(row)
    return rows


def comparison_markdown(rows: list[dict[str, Any]]) -> str:
    """The comparison as a Markdown table (the report's renderer), with a note on the units."""
    from pml_ops.report.render import markdown_table
    from pml_ops.report.spec import Table

    table = Table(
        caption="",
        columns=[title for _, title, _ in COLUMNS],
        rows=[{title: row.get(key) for key, title, _ in COLUMNS} for row in rows],
        formats={title: spec for _, title, spec in COLUMNS if spec},
    )
    note = (
        "\nScores are means over the test set in nats per image. ELBO and IWAE (VAE, CVAE) use a "
        "Bernoulli decoder with pixel values in [0, 1] as targets; PPCA and GMM scores are exact "
        "Gaussian densities over pixel values, so the two groups are not on a common scale. MSE is "
        "per pixel, images in [0, 1], against the decoder mean.\n"
    )
    return markdown_table(table) + "\n" + note
