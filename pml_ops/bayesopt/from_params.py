"""Typed params -> BO settings."""

from __future__ import annotations

from pml_ops.bayesopt.loop import BOSettings, WarmStart
from pml_ops.config import Params
from pml_ops.gp.from_params import nuts_settings
from pml_ops.gp.model import LogNormalPrior


def bo_settings(params: Params) -> BOSettings:
    """The loop's GP uses the `gp` section's priors and noise; its NUTS is `bayesopt.nuts`."""
    cfg, priors = params.bayesopt, params.gp.priors
    return BOSettings(
        bounds=(cfg.bounds[0], cfg.bounds[1]),
        iterations=cfg.iterations,
        acquisition=cfg.acquisition,
        lcb_kappa=cfg.lcb_kappa,
        grid_points=cfg.grid_points,
        acquisition_samples=cfg.acquisition_samples,
        noise=params.gp.noise_variance,
        variance_prior=LogNormalPrior(priors.variance.loc, priors.variance.scale),
        lengthscale_prior=LogNormalPrior(priors.lengthscale.loc, priors.lengthscale.scale),
        nuts=nuts_settings(cfg.nuts),
        warm_start=WarmStart(cfg.warm_start.enabled, cfg.warm_start.warmup_steps),
    )
