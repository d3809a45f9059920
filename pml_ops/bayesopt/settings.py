"""Typed params -> BO settings."""

from __future__ import annotations

from pml_ops.bayesopt.loop import BOSettings, WarmStart
from pml_ops.config import Params
from pml_ops.gp.from_params import kernel, log_normal, nuts_settings, optional_log_normal


def bo_settings(params: Params) -> BOSettings:
    """The loop's GP has the kernel `bayesopt.kernel` with the `gp` section's priors and noise;
    its NUTS is `bayesopt.nuts`."""
    cfg, priors = params.bayesopt, params.gp.priors
    return BOSettings(
        bounds=(cfg.bounds[0], cfg.bounds[1]),
        iterations=cfg.iterations,
        acquisition=cfg.acquisition,
        lcb_kappa=cfg.lcb_kappa,
        grid_points=cfg.grid_points,
        acquisition_samples=cfg.acquisition_samples,
        noise=params.gp.noise_variance,
        variance_prior=log_normal(priors.variance),
        lengthscale_prior=log_normal(priors.lengthscale),
        nuts=nuts_settings(cfg.nuts),
        warm_start=WarmStart(cfg.warm_start.enabled, cfg.warm_start.warmup_steps),
        kernel=kernel(cfg.kernel, "bayesopt.kernel"),
        alpha_prior=optional_log_normal(priors.alpha),
        period_prior=optional_log_normal(priors.period),
    )
