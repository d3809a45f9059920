"""PNG figures for density models; images are (N, 784) arrays with pixel values in [0, 1]."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pml_ops.core.plotting import pyplot, save_figure
from pml_ops.density.interface import DIGITS, FigureInputs, LatentDensityModel

SIDE = 28


def image_grid(images: np.ndarray, rows: int, cols: int, pad: int = 1) -> np.ndarray:
    """Tile (rows*cols, 784) images into one (rows*29+1, cols*29+1) array, clipped to [0, 1]."""
    tiles = np.clip(images.reshape(rows, cols, SIDE, SIDE), 0.0, 1.0)
    cell = SIDE + pad
    grid = np.ones((rows * cell + pad, cols * cell + pad))
    for r in range(rows):
        for c in range(cols):
            grid[pad + r * cell : pad + r * cell + SIDE, pad + c * cell : pad + c * cell + SIDE] = tiles[r, c]
    return grid


def _figure(**kwargs: Any) -> Any:
    return pyplot().subplots(**kwargs)


def latent_scatter(
    latent: np.ndarray, labels: np.ndarray, title: str, path: Path, class_names: tuple[str, ...] = DIGITS
) -> Path:
    fig, ax = _figure(figsize=(6.5 if class_names != DIGITS else 6, 5.5))
    n = len(class_names)
    points = ax.scatter(
        latent[:, 0], latent[:, 1], c=labels, cmap="tab10", s=2, alpha=0.6, vmin=-0.5, vmax=n - 0.5
    )
    bar = fig.colorbar(points, ax=ax, ticks=range(n), label="digit" if class_names == DIGITS else "class")
    bar.ax.set_yticklabels(class_names)
    ax.set(xlabel="z1 (posterior mean)", ylabel="z2 (posterior mean)", title=title)
    return save_figure(fig, path)


def latent_grid(model: LatentDensityModel, size: int, span: float, title: str, path: Path) -> Path:
    """Decoder means over a size x size grid of [-span, span]^2 (other latent dims at 0)."""
    axis = np.linspace(-span, span, size)
    z = np.zeros((size * size, model.latent_dim))
    z[:, 0] = np.tile(axis, size)
    z[:, 1] = np.repeat(axis[::-1], size)  # z2 grows upwards
    fig, ax = _figure(figsize=(7, 7))
    ax.imshow(image_grid(model.decode(z), size, size), cmap="gray", extent=(-span, span, -span, span))
    ax.set(xlabel="z1", ylabel="z2", title=title)
    return save_figure(fig, path)


def reconstructions(images: np.ndarray, recon: np.ndarray, title: str, path: Path) -> Path:
    """Test digits (top row) above their reconstructions (bottom row)."""
    n = len(images)
    fig, ax = _figure(figsize=(n, 2.3))
    ax.imshow(image_grid(np.concatenate([images, recon]), 2, n), cmap="gray")
    ax.set_axis_off()
    ax.set_title(title)
    return save_figure(fig, path)


def gmm_components(means: np.ndarray, samples: list[np.ndarray], title: str, path: Path) -> Path:
    """Row k: the mean of component k, then samples drawn from it."""
    k, per = len(means), len(samples[0])
    tiles = np.concatenate([np.concatenate([means[i : i + 1], samples[i]]) for i in range(k)])
    fig, ax = _figure(figsize=(per + 1, k))
    ax.imshow(image_grid(tiles, k, per + 1), cmap="gray")
    ax.set_axis_off()
    ax.set_title(title)
    return save_figure(fig, path)


def latent_figures(model: LatentDensityModel, inputs: FigureInputs) -> list[Path]:
    """A latent-variable model's figures: test set in latent space (coloured by class), decoder
    grid, reconstructions."""
    x_test, params, out = inputs.x_test, inputs.params, inputs.out
    label = model.name.upper()
    first = x_test[: params.n_reconstructions]
    return [
        latent_scatter(
            model.encode(x_test),
            inputs.y_test,
            f"{label}: test set in latent space",
            out / "latent.png",
            inputs.class_names,
        ),
        latent_grid(model, params.grid_size, params.grid_span, f"{label}: decoder means", out / "grid.png"),
        reconstructions(
            first,
            model.reconstruct(first, sample=False, seed=inputs.seed),
            f"{label}: test images (top) and reconstructions from the posterior mean",
            out / "reconstructions.png",
        ),
    ]
