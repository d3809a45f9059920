"""Figures of a BO run: one panel pair per snapshot iteration, and best-so-far."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from pml_ops.bayesopt.loop import Snapshot
from pml_ops.core.plotting import pyplot, save_figure


def plot_snapshot(snapshot: Snapshot, objective: Callable[[np.ndarray], np.ndarray], path) -> None:
    plt = pyplot()
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5.5), sharex=True, height_ratios=[2, 1])
    top.fill_between(snapshot.grid, snapshot.lower, snapshot.upper, alpha=0.3, label="95% band")
    top.plot(snapshot.grid, snapshot.mean, label="posterior mean")
    top.plot(snapshot.grid, objective(snapshot.grid), "k--", lw=1, label="f")
    top.plot(snapshot.x, snapshot.y, "ro", label="data")
    top.axvline(snapshot.x_next, color="C2", ls=":", label="next x")
    top.set(ylabel="f(x)", title=f"iteration {snapshot.iteration}")
    top.legend(fontsize=7)
    bottom.plot(snapshot.grid, snapshot.utility, color="C1")
    bottom.axvline(snapshot.x_next, color="C2", ls=":")
    bottom.set(xlabel="x", ylabel="acquisition")
    save_figure(figure, path)


def plot_best_so_far(best: np.ndarray, global_minimum: float, path: str | os.PathLike[str]) -> None:
    plt = pyplot()
    figure, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(np.arange(len(best)), best, "o-", label="best f so far")
    ax.axhline(global_minimum, color="k", ls="--", label="global minimum")
    ax.set(xlabel="iteration (0 = initial design)", ylabel="best f")
    ax.legend(fontsize=8)
    save_figure(figure, path)
