"""DVC stage `gp`: NUTS posterior of the study's GP hyperparameters, diagnostics, figures."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from pml_ops.config import Params
from pml_ops.gp import diagnostics, plots
from pml_ops.gp.build import flatten, gp_model, nuts_settings
from pml_ops.gp.nuts import sample_posterior
from pml_ops.gp.objective import Expression
from pml_ops.gp.predict import predict
from pml_ops.io import write_json
from pml_ops.run_group import stage_run
from pml_ops.stage import run_stage


def gp_stage(params: Params) -> None:
    import mlflow

    began = time.perf_counter()
    cfg = params.gp
    objective = Expression(cfg.objective)
    x = np.asarray(cfg.x_train, dtype=float)
    model = gp_model(x, objective(x), cfg.noise_variance, cfg.priors)

    posterior = sample_posterior(model, nuts_settings(cfg.nuts))
    idata = diagnostics.to_inference_data(posterior)
    diagnostics.save_inference_data(idata, cfg.outputs.inference_data)
    metrics = diagnostics.summarize(idata)
    metrics["sampling_wall_time_s"] = posterior.wall_time_s
    metrics["chain_processes"] = posterior.processes
    metrics["ess_bulk_per_s"] = min(metrics[f"ess_bulk_{n}"] for n in ("variance", "lengthscale")) / (
        posterior.wall_time_s
    )

    rng = np.random.default_rng(cfg.predictive.seed)
    variance, lengthscale = posterior.flat("variance"), posterior.flat("lengthscale")
    grid = np.linspace(x.min(), x.max(), cfg.predictive.num_points)
    on_grid = predict(model, grid, variance, lengthscale)
    grid_draws = on_grid.draws(rng, cfg.predictive.draws_per_sample)
    band = (np.quantile(grid_draws, 0.025, axis=0), np.quantile(grid_draws, 0.975, axis=0))
    x_star = cfg.predictive.x_star
    star_draws = predict(model, np.array([x_star]), variance, lengthscale).draws(
        rng, cfg.predictive.draws_per_sample
    )[:, 0]
    true_star = float(objective(np.array([x_star]))[0])
    metrics.update(
        predictive_mean_at_x_star=float(star_draws.mean()),
        predictive_sd_at_x_star=float(star_draws.std()),
        predictive_q025_at_x_star=float(np.quantile(star_draws, 0.025)),
        predictive_q975_at_x_star=float(np.quantile(star_draws, 0.975)),
        true_f_at_x_star=true_star,
        band_coverage_of_true_f=float(np.mean((objective(grid) >= band[0]) & (objective(grid) <= band[1]))),
    )

    figures = Path(cfg.outputs.figures)
    plots.plot_densities(idata, figures / "posterior_densities.png")
    plots.plot_trace(idata, figures / "trace.png")
    plots.plot_scatter(posterior.samples, figures / "samples_loglog.png")
    plots.plot_predictive(model, grid, on_grid.mixture_mean(), band, objective, figures / "predictive.png")
    plots.plot_point_predictive(star_draws, x_star, true_star, figures / "predictive_x_star.png")

    metrics["wall_time_s"] = time.perf_counter() - began
    write_json(cfg.outputs.metrics, metrics)

    with stage_run(params, "gp", {"stage": "gp"}):
        mlflow.log_params(flatten("gp", cfg.model_dump()))
        mlflow.log_metrics(metrics)
        mlflow.log_artifacts(str(figures), artifact_path="figures")
        mlflow.log_artifact(cfg.outputs.inference_data, artifact_path="posterior")
    print(
        f"gp: {metrics['num_draws']} draws in {posterior.wall_time_s:.1f}s "
        f"({posterior.processes} processes); ESS bulk variance {metrics['ess_bulk_variance']:.0f}, "
        f"lengthscale {metrics['ess_bulk_lengthscale']:.0f}; divergences {metrics['divergences']}"
    )


if __name__ == "__main__":
    run_stage(gp_stage)
