"""The study's figures, drawn with Optuna's matplotlib backend (no plotly needed)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna

from pml_ops.core.plotting import pyplot, save_figure
from pml_ops.tuning.task import COST

TARGET_NAME = "validation ELBO (nats/image)"
FIGURES: dict[str, Callable[..., Any]] = {
    "optimization_history": optuna.visualization.matplotlib.plot_optimization_history,
    "param_importances": optuna.visualization.matplotlib.plot_param_importances,
    "parallel_coordinate": optuna.visualization.matplotlib.plot_parallel_coordinate,
}


def pareto_figure(cost: dict[str, Any], path: Path) -> Path:
    """Validation ELBO against training MFLOP per image of every completed trial, Optuna's Pareto
    front joined, the model's own architecture and the cost budget as vertical lines, and the
    promotion candidate (best ELBO within the budget) marked (`cost` from `report.cost_summary`)."""
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.5))
    trials = {t["number"]: t for t in cost["trials"]}
    axes.scatter(
        [t[COST] for t in trials.values()], [t["value"] for t in trials.values()], color="0.6", label="trial"
    )
    front = [trials[n] for n in cost["pareto_front"]]
    axes.plot([t[COST] for t in front], [t["value"] for t in front], "o-", color="C0", label="Pareto front")
    reference = cost["reference_mflop_per_image"]
    axes.axvline(reference, color="C2", linestyle=":", label="own architecture")
    axes.axvline(
        reference * cost["max_cost_ratio"],
        color="C3",
        linestyle="--",
        label=f"budget ({cost['max_cost_ratio']:g}x)",
    )
    best = cost["best_within_budget"]
    if best is not None:
        axes.scatter(
            [trials[best][COST]],
            [trials[best]["value"]],
            marker="*",
            s=250,
            color="C1",
            zorder=3,
            label=f"promotion candidate (trial {best})",
        )
    for t in front:
        axes.annotate(
            str(t["number"]), (t[COST], t["value"]), textcoords="offset points", xytext=(4, -10), fontsize=8
        )
    axes.set_xscale("log")
    axes.set_xlabel("training MFLOP per image (forward and backward, counted)")
    axes.set_ylabel(TARGET_NAME)
    axes.legend(fontsize=8)
    save_figure(figure, path)
    return path


def validation_elbo(trial: optuna.trial.FrozenTrial) -> float:
    """The first objective: what the single-objective figures show of the two-objective study."""
    return float(trial.values[0])


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
                if name == "param_importances":  # importances for reaching low values of the target
                    axes = plot(study, target=lambda t: -validation_elbo(t), target_name=f"-{TARGET_NAME}")
                else:
                    axes = plot(study, target=validation_elbo, target_name=TARGET_NAME)
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
