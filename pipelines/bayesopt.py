"""DVC stage `bayesopt`: one fully Bayesian optimisation run at the configured acquisition."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from pml_ops.bayesopt import figures as plots
from pml_ops.bayesopt.loop import minimise
from pml_ops.bayesopt.settings import bo_settings
from pml_ops.config import Params
from pml_ops.core.expression import Expression, grid_minimum
from pml_ops.core.io import write_json
from pml_ops.core.metrics_files import write_metrics
from pml_ops.core.resources import resource_metrics
from pml_ops.runtime.stage import run_stage
from pml_ops.tracking.params import flatten
from pml_ops.tracking.run_group import tracked_stage


def bayesopt_stage(params: Params) -> None:
    # deferred: ~1.3 s at import; the NUTS chain workers this stage spawns on macOS and Windows
    # re-import this script and never need it
    import mlflow

    began = time.perf_counter()
    cfg = params.bayesopt
    objective = Expression(cfg.objective)
    settings = bo_settings(params)
    x_min, f_min = grid_minimum(objective, settings.bounds)
    result = minimise(
        objective, np.asarray(cfg.x_init, dtype=float), settings, cfg.nuts.seed, tuple(cfg.plot_iterations)
    )
    best = result.best_so_far()

    figures = Path(cfg.outputs.figures)
    for t, snapshot in result.snapshots.items():
        plots.plot_snapshot(snapshot, objective, figures / f"iteration_{t:02d}.png")
    plots.plot_best_so_far(best, f_min, figures / "best_so_far.png")
    history = {
        "x": result.x.tolist(),
        "y": result.y.tolist(),
        "best_so_far": best.tolist(),
        "divergences_per_iteration": result.divergences,
        "acquisition": cfg.acquisition,
    }
    write_json(cfg.outputs.history, history)
    metrics = {
        "best_f": float(best[-1]),
        "best_x": result.best_x,
        "global_minimum_f": f_min,
        "global_minimum_x": x_min,
        "gap": float(best[-1] - f_min),
        "success": int(best[-1] - f_min <= cfg.success_tolerance),  # 0/1
        "divergences": int(sum(result.divergences)),
        **resource_metrics(began),
    }
    write_metrics(cfg.outputs.metrics, metrics)

    with tracked_stage(params, "bayesopt", {"stage": "bayesopt", "acquisition": cfg.acquisition}):
        mlflow.log_params(flatten("bayesopt", cfg.model_dump()))
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        for step, value in enumerate(best):
            mlflow.log_metric("best_so_far", float(value), step=step)
        mlflow.log_artifacts(str(figures), artifact_path="figures")
        mlflow.log_artifact(cfg.outputs.history)
    print(
        f"bayesopt: best f {best[-1]:.4f} at x = {result.best_x:.4f} (global {f_min:.4f}); "
        f"success={bool(metrics['success'])}"
    )


if __name__ == "__main__":
    run_stage(bayesopt_stage)
