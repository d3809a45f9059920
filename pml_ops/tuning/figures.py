"""The study's figures, drawn with Optuna's matplotlib backend (no plotly needed)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna

from pml_ops.plotting import pyplot, save_figure

TARGET_NAME = "validation ELBO (nats/image)"
FIGURES: dict[str, Callable[..., Any]] = {
    "optimization_history": optuna.visualization.matplotlib.plot_optimization_history,
    "param_importances": optuna.visualization.matplotlib.plot_param_importances,
    "parallel_coordinate": optuna.visualization.matplotlib.plot_parallel_coordinate,
}


def pareto_figure(cost: dict[str, Any], path: Path) -> Path:
    """Validation ELBO against seconds per training epoch of every completed trial, the Pareto
    front joined, and the cost budget as a vertical line (`cost` from `report.cost_summary`)."""
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.5))
    trials = {t["number"]: t for t in cost["trials"]}
    axes.scatter(
        [t["seconds_per_epoch"] for t in trials.values()],
        [t["value"] for t in trials.values()],
        color="0.6",
        label="trial",
    )
    front = [trials[n] for n in cost["pareto_front"]]
    axes.plot(
        [t["seconds_per_epoch"] for t in front],
        [t["value"] for t in front],
        "o-",
        color="C0",
        label="Pareto front",
    )
    if cost["reference_seconds_per_epoch"] is not None:
        limit = cost["reference_seconds_per_epoch"] * cost["max_epoch_time_ratio"]
        axes.axvline(cost["reference_seconds_per_epoch"], color="C2", linestyle=":", label="own architecture")
        axes.axvline(limit, color="C3", linestyle="--", label=f"budget ({cost['max_epoch_time_ratio']:g}x)")
    axes.set_xscale("log")
    axes.set_xlabel("seconds per training epoch (trial settings)")
    axes.set_ylabel(TARGET_NAME)
    axes.legend()
    save_figure(figure, path)
    return path


def draw_figures(study: optuna.Study, directory: Path) -> tuple[list[Path], dict[str, str]]:
    """Write each figure as PNG; return the files written and, per figure not drawn, why.

    Importances need at least two completed trials; a figure that cannot be drawn yet is
    reported, not fatal.
    """
    pyplot()  # the Agg backend before optuna draws
    written: list[Path] = []
    skipped: dict[str, str] = {}
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    for name, plot in FIGURES.items():
        if len(complete) < 2:
            skipped[name] = f"needs at least 2 completed trials, the study has {len(complete)}"
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                axes = plot(study, target_name=TARGET_NAME)
        except (ValueError, RuntimeError) as error:
            skipped[name] = str(error)
            continue
        figure = axes.figure
        figure.set_size_inches(9, 5.5)
        figure.tight_layout()
        path = directory / f"{name}.png"
        save_figure(figure, path, tight=False)
        written.append(path)
    return written, skipped
