"""Figures of a GP posterior: densities, traces, log-log scatter by chain and predictives."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from pml_ops.core.plotting import pyplot, save_figure
from pml_ops.gp.model import HYPERPARAMETERS, GPModel

# ArviZ (~1.6 s at import) is imported where it is used: the NUTS chain workers that the gp stage
# spawns on macOS and Windows re-import this module with the stage script and never need it.


def plot_densities(idata, path: str | os.PathLike[str]) -> None:
    import arviz as az  # deferred: see the note at the imports

    pyplot()
    axes = az.plot_posterior(idata, var_names=list(HYPERPARAMETERS), hdi_prob=0.95)
    save_figure(np.ravel(axes)[0].figure, path)


def plot_trace(idata, path: str | os.PathLike[str]) -> None:
    import arviz as az  # deferred: see the note at the imports

    pyplot()
    axes = az.plot_trace(idata, var_names=list(HYPERPARAMETERS), compact=False)
    save_figure(np.ravel(axes)[0].figure, path)


def plot_scatter(samples: dict[str, np.ndarray], path: str | os.PathLike[str]) -> None:
    plt = pyplot()
    figure, ax = plt.subplots(figsize=(5, 4.5))
    for chain in range(samples["variance"].shape[0]):
        ax.scatter(
            samples["variance"][chain], samples["lengthscale"][chain], s=4, alpha=0.4, label=f"chain {chain}"
        )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="variance",
        ylabel="lengthscale",
        title="posterior samples (log-log)",
    )
    ax.legend(markerscale=3)
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
