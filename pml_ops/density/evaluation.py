"""Test-set metrics for any `DensityModel`, and the comparison table of all models (Table 1).

Every column is scored on the same test images and carries its standard error over images (and,
for the sampled ELBO and IWAE, its Monte Carlo error). The IWAE is costly, so it may run on the
first `evaluate.iwae_images` test images; every model's score and bits/dim are then also given on
exactly that subset, beside the all-images score.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from pml_ops.config import EvaluateParams
from pml_ops.density.interface import DensityModel, LatentDensityModel
from pml_ops.density.units import bits_per_dim, mean_and_se
from pml_ops.density.vae_model import VaeModel
from pml_ops.progress import progress

IWAE_SLICE = 100  # images per progress step of the IWAE

if TYPE_CHECKING:
    from pml_ops.report.spec import Table


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
    from sklearn.neighbors import KNeighborsClassifier

    return float(KNeighborsClassifier(n_neighbors=k).fit(train_latent, y_train).score(test_latent, y_test))


def batched_iwae(
    model: VaeModel, x: np.ndarray, params: EvaluateParams, seed: int
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
    if isinstance(model, VaeModel):
        # Two independent single-sample ELBOs per image: (e1 - e2)^2 / 2 estimates each one's variance.
        again = model.log_density(x_test, seed + 1)
        metrics["test_score_mc_se"] = _mc_se((scores - again) ** 2 / 2)
        metrics["subset_score_mc_se"] = _mc_se((scores[:n_subset] - again[:n_subset]) ** 2 / 2)
        if not (model.normalised and x_dequantised is not None):
            # A normalised decoder's IWAE runs once, at the dequantised points (its bits/dim below):
            # its density at the grey levels k/255, where it was not trained, ranks nothing.
            bounds, variances = batched_iwae(model, x_test[:n_subset], params, seed)
            _with_se(metrics, "test_iwae", bounds)
            metrics["test_iwae_mc_se"] = _mc_se(variances)
            _with_se(metrics, "iwae_gap", bounds - scores[:n_subset])  # paired: the bound gap alone
        metrics["iwae_samples"] = params.iwae_samples
        metrics["iwae_images"] = n_subset
    if model.normalised and x_dequantised is not None:
        dims = x_dequantised.shape[1]
        points = x_dequantised[:n_subset]
        if isinstance(model, VaeModel):
            log_p, variances = batched_iwae(model, points, params, seed)
            metrics["bits_per_dim_mc_se"] = _mc_se(variances) / (dims * math.log(2))
            metrics["bits_per_dim_estimate"] = f"IWAE K={params.iwae_samples} (an upper bound)"
        else:
            log_p = model.log_density(points)
            metrics["bits_per_dim_estimate"] = "exact"
        _with_se(metrics, "bits_per_dim", bits_per_dim(log_p, dims))
    if isinstance(model, LatentDensityModel):
        for key, sample in (("test_mse_posterior_sample", True), ("test_mse_posterior_mean", False)):
            _with_se(metrics, key, per_image_mse(x_test, model.reconstruct(x_test, sample, seed)))
        accuracy = knn_accuracy(
            model.encode(x_train), y_train, model.encode(x_test), y_test, params.knn_neighbors
        )
        metrics["test_knn_accuracy"] = accuracy
        metrics["test_knn_accuracy_se"] = math.sqrt(accuracy * (1 - accuracy) / len(x_test))
        metrics["knn_neighbors"] = params.knn_neighbors
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


def estimate(row: dict[str, Any], key: str, spec: str) -> str | None:
    """`mean ± se` of metric `key` (with `MC ±` when it has a Monte Carlo error), or None."""
    value = row.get(key)
    if value is None:
        return None
    text = format(value, spec)
    if row.get(f"{key}_se") is not None:
        text += f" ± {row[f'{key}_se']:{spec}}"
    if row.get(f"{key}_mc_se") is not None:
        text += f" (MC ± {row[f'{key}_mc_se']:{spec}})"
    return text


# Table 1's columns, grouped by unit: (group, metrics key, column title, format).
GROUPS = {
    "nats": "nats/image",
    "bpd": "bits/dim",
    "mse": "MSE/pixel",
    "knn": "k-NN accuracy",
}
COLUMNS = [
    ("nats", "test_score", "score, all test images", ".2f"),
    ("nats", "subset_score", "score, IWAE images", ".2f"),
    ("nats", "test_iwae", "IWAE, IWAE images", ".2f"),
    ("nats", "iwae_gap", "IWAE - ELBO", ".2f"),
    ("bpd", "bits_per_dim", "dequantised, IWAE images", ".4f"),
    ("mse", "test_mse_posterior_sample", "posterior sample", ".4f"),
    ("mse", "test_mse_posterior_mean", "posterior mean", ".4f"),
    ("knn", "test_knn_accuracy", "latent means", ".4f"),
]


def column_title(group: str, title: str) -> str:
    return f"[{GROUPS[group]}] {title}"


def table1(
    rows: list[dict[str, Any]],
    caption: str = "",
    extra: dict[str, tuple[str, dict[str, Any], str]] | None = None,
) -> Table:
    """Table 1: one row per model, columns grouped by unit, each number `mean ± se` over images.

    `extra` adds columns title -> (format, {model: value}, note), e.g. the original study's numbers.
    """
    from pml_ops.report.spec import Table

    extra = extra or {}
    first = rows[0] if rows else {}
    n_all, n_subset = first.get("test_images"), first.get("subset_images")
    k = next((row["iwae_samples"] for row in rows if row.get("iwae_samples")), None)
    knn = next((row["knn_neighbors"] for row in rows if row.get("knn_neighbors")), None)
    columns = ["model", "objective / observation"]
    columns += [column_title(group, title) for group, _, title, _ in COLUMNS]
    for title in extra:  # beside the last column of its unit group ("[unit] ...")
        same_unit = [i for i, column in enumerate(columns) if column.split("]")[0] == title.split("]")[0]]
        columns.insert(same_unit[-1] + 1 if same_unit else len(columns), title)
    cells = []
    for row in rows:
        cell: dict[str, Any] = {
            "model": row["model"],
            "objective / observation": f"{row.get('objective')}: {row.get('observation')}",
        }
        for group, key, title, spec in COLUMNS:
            cell[column_title(group, title)] = estimate(row, key, spec)
        if row.get("bits_per_dim") is None:
            cell[column_title("bpd", "dequantised, IWAE images")] = (
                "not a density" if not row.get("normalised", True) else None
            )
        for title, (_, values, _) in extra.items():
            cell[title] = values.get(row["model"])
        cells.append(cell)
    notes = {
        column_title("nats", "score, all test images"): (
            f"mean log-score over all {f'{n_all} ' if n_all else ''}test images (pixel values k/255), "
            "nats per image: the "
            "single-sample ELBO for the VAE/CVAE (the study's unit and comparison; with the Bernoulli "
            "decoder not a normalised density, so comparable only among the Bernoulli models), the "
            "exact log-likelihood for PPCA and the GMM (Gaussian densities over [0, 1]^784). A "
            "continuous-Bernoulli VAE/CVAE's ELBO bounds a normalised density over [0, 1]^784 too, "
            "trained on dequantised images, but densities at the 256 grey levels k/255 do not rank "
            "models: bits/dim does. ± is the "
            "standard error over images; MC ± the Monte Carlo error of the sampled ELBO (from two "
            "independent draws per image)"
        ),
        column_title("nats", "score, IWAE images"): (
            f"the same score on the {f'{n_subset} ' if n_subset else ''}test images that the IWAE and "
            "bits/dim use (the "
            f"first {n_subset or 'evaluate.iwae_images'}), so these columns compare like with like"
        ),
        column_title("nats", "IWAE, IWAE images"): (
            f"importance-weighted bound on log p(x), K = {k}, same images; MC ± by the delta method "
            "from the importance weights. Bernoulli VAE/CVAE only: a continuous-Bernoulli one's IWAE "
            "is taken at the dequantised points, as its bits/dim"
        ),
        column_title("nats", "IWAE - ELBO"): "the bound gap, paired per image (same images, same scale)",
        column_title("bpd", "dequantised, IWAE images"): (
            "bits per dimension of the 8-bit images under uniform dequantisation (k + u) / 256 with one "
            "fixed noise draw shared by all models; normalised densities only: exact for PPCA/GMM, from "
            "the IWAE (an upper bound) for a continuous-Bernoulli VAE/CVAE, which is trained on "
            "dequantised images (fresh noise each batch). A Bernoulli decoder is not a density over "
            "grey levels: no bits/dim"
        ),
        column_title("mse", "posterior sample"): (
            "per-pixel MSE of the decoder mean at one posterior sample (as the study), images in [0, 1]"
        ),
        column_title("mse", "posterior mean"): "per-pixel MSE of the decoder mean at the posterior mean",
        column_title("knn", "latent means"): (
            f"{knn}-nearest-neighbour classifier fit on the training latent means, test accuracy "
            "(± binomial standard error)"
        ),
    }
    notes.update({title: note for title, (_, _, note) in extra.items()})
    formats = {title: spec for title, (spec, _, _) in extra.items()}
    return Table(caption=caption, columns=columns, rows=cells, notes=notes, formats=formats)


def comparison_markdown(rows: list[dict[str, Any]]) -> str:
    """Table 1 as Markdown (the report's renderer), its groups and columns explained below it."""
    from pml_ops.report.render import markdown_table

    groups = (
        "Columns are grouped by unit: **nats/image** (higher is better; the study's unit), "
        "**bits/dim** (lower is better; the one unit in which all normalised densities compare), "
        "**MSE/pixel** (lower is better) and **k-NN accuracy** (higher is better). Normalised "
        "densities: PPCA and the GMM (exact) and the continuous-Bernoulli VAE/CVAE (bounds); the "
        "Bernoulli ELBOs (the study's comparison) are not, and have no bits/dim.\n"
    )
    return groups + "\n" + markdown_table(table1(rows)) + "\n"
