"""DVC stage `gp`: NUTS posterior of the study's GP hyperparameters, diagnostics, figures."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from pml_ops.config import Params
from pml_ops.core.expression import Expression
from pml_ops.core.metrics_files import write_metrics
from pml_ops.core.resources import resource_metrics
from pml_ops.gp import diagnostics
from pml_ops.gp import figures as plots
from pml_ops.gp.from_params import gp_model, kernel, nuts_settings
from pml_ops.gp.predict import summarize_predictive
from pml_ops.inference.nuts import sample_posterior
from pml_ops.runtime.stage import run_stage
from pml_ops.tracking.params import flatten
from pml_ops.tracking.run_group import tracked_stage


def gp_stage(params: Params) -> None:
    # deferred: ~1.3 s at import; the NUTS chain workers this stage spawns on macOS and Windows
    # re-import this script and never need it
    import mlflow

    began = time.perf_counter()
    cfg = params.gp
    objective = Expression(cfg.objective)
    x = np.asarray(cfg.x_train, dtype=float)
    model = gp_model(x, objective(x), cfg.noise_variance, cfg.priors, kernel(cfg.kernel, "gp.kernel"))

    posterior = sample_posterior(model, nuts_settings(cfg.nuts))
    idata = diagnostics.to_inference_data(posterior)
    diagnostics.save_inference_data(idata, cfg.outputs.inference_data)
    metrics = diagnostics.summarize(idata)
    metrics["sampling_wall_time_s"] = posterior.wall_time_s
    metrics["chain_processes"] = posterior.processes
    metrics["ess_bulk_per_s"] = min(metrics[f"ess_bulk_{n}"] for n in model.parameter_names) / (
        posterior.wall_time_s
    )

    summary = summarize_predictive(
        model,
        np.linspace(x.min(), x.max(), cfg.predictive.num_points),
        cfg.predictive.x_star,
        {name: posterior.flat(name) for name in model.parameter_names},
        np.random.default_rng(cfg.predictive.seed),
        cfg.predictive.draws_per_sample,
    )
    true_star = float(objective(np.array([cfg.predictive.x_star]))[0])
    metrics.update(summary.metrics(objective(summary.grid), true_star))

    figures = Path(cfg.outputs.figures)
    plots.plot_densities(idata, figures / "posterior_densities.png")
    plots.plot_trace(idata, figures / "trace.png")
    plots.plot_scatter(posterior.samples, figures / "samples_loglog.png")
    plots.plot_predictive(
        model, summary.grid, summary.mean, summary.band, objective, figures / "predictive.png"
    )
    plots.plot_point_predictive(
        summary.star_draws, cfg.predictive.x_star, true_star, figures / "predictive_x_star.png"
    )

    metrics.update(resource_metrics(began))
    write_metrics(cfg.outputs.metrics, metrics)

    with tracked_stage(params, "gp", {"stage": "gp"}):
        mlflow.log_params(flatten("gp", cfg.model_dump()))
        mlflow.log_metrics(metrics)
        mlflow.log_artifacts(str(figures), artifact_path="figures")
        mlflow.log_artifact(cfg.outputs.inference_data, artifact_path="posterior")
    ess = ", ".join(f"{name} {metrics[f'ess_bulk_{name}']:.0f}" for name in model.parameter_names)
    print(
        f"gp: {metrics['num_draws']} draws in {posterior.wall_time_s:.1f}s "
        f"({posterior.processes} processes); ESS bulk {ess}; divergences {metrics['divergences']}"
    )


if __name__ == "__main__":
    run_stage(gp_stage)
