"""Figures of a GP posterior: densities, traces, log-log scatter by chain and predictives."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from pml_ops.core.plotting import pyplot, save_figure
from pml_ops.gp.model import GPModel


def _names(idata) -> list[str]:
    """The hyperparameters of the posterior, in the kernel's order."""
    return [str(name) for name in idata.posterior.data_vars]


# ArviZ (~1.6 s at import) is imported where it is used: the NUTS chain workers that the gp stage
# spawns on macOS and Windows re-import this module with the stage script and never need it.


def plot_densities(idata, path: str | os.PathLike[str]) -> None:
    import arviz as az  # deferred: see the note at the imports

    pyplot()
    axes = az.plot_posterior(idata, var_names=_names(idata), hdi_prob=0.95)
    save_figure(np.ravel(axes)[0].figure, path)


def plot_trace(idata, path: str | os.PathLike[str]) -> None:
    import arviz as az  # deferred: see the note at the imports

    pyplot()
    axes = az.plot_trace(idata, var_names=_names(idata), compact=False)
    save_figure(np.ravel(axes)[0].figure, path)


def plot_scatter(samples: dict[str, np.ndarray], path: str | os.PathLike[str]) -> None:
    """Log-log scatter of each pair of hyperparameters by chain: one panel for two (variance
    against lengthscale), the lower triangle of a grid for more."""
    plt = pyplot()
    names = list(samples)
    size = len(names) - 1
    figure, axes = plt.subplots(size, size, figsize=(5 * size, 4.5 * size), squeeze=False)
    for row in range(size):
        for column in range(size):
            ax = axes[row, column]
            if column > row:
                ax.axis("off")
                continue
            x_name, y_name = names[column], names[row + 1]
            for chain in range(samples[x_name].shape[0]):
                ax.scatter(
                    samples[x_name][chain], samples[y_name][chain], s=4, alpha=0.4, label=f"chain {chain}"
                )
            ax.set(xscale="log", yscale="log", xlabel=x_name, ylabel=y_name)
    axes[0, 0].set(title="posterior samples (log-log)")
    axes[0, 0].legend(markerscale=3)
    save_figure(figure, path)


def plot_predictive(
    model: GPModel,
    grid: np.ndarray,
    mean: np.ndarray,
    band: tuple[np.ndarray, np.ndarray],
    truth: Callable[[np.ndarray], np.ndarray],
    path: str | os.PathLike[str],
) -> None:
    plt = pyplot()
    figure, ax = plt.subplots(figsize=(7, 4))
    ax.fill_between(grid, band[0], band[1], alpha=0.3, label="95% band")
    ax.plot(grid, mean, label="posterior mean")
    ax.plot(grid, truth(grid), "k--", lw=1, label="true f")
    ax.plot(model.x, model.y, "ro", label="data")
    ax.set(xlabel="x", ylabel="f(x)", title="posterior predictive of f")
    ax.legend(fontsize=8)
    save_figure(figure, path)


def plot_point_predictive(draws: np.ndarray, x_star: float, true_value: float, path) -> None:
    plt = pyplot()
    figure, ax = plt.subplots(figsize=(5, 3.5))
    ax.hist(draws, bins=60, density=True, alpha=0.6)
    ax.axvline(true_value, color="k", ls="--", label=f"true f({x_star:g})")
    ax.axvline(draws.mean(), color="C1", label="predictive mean")
    ax.set(xlabel=f"f({x_star:g})", ylabel="density", title=f"posterior predictive at x* = {x_star:g}")
    ax.legend(fontsize=8)
    save_figure(figure, path)
