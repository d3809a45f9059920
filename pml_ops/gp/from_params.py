"""Typed params -> library objects (the only place the GP code reads `pml_ops.config`)."""

from __future__ import annotations

import numpy as np

from pml_ops.config import GPPriorParams, LogNormalParams, NUTSParams
from pml_ops.gp.kernels import Kernel, parse_kernel
from pml_ops.gp.model import GPModel, LogNormalPrior
from pml_ops.inference.nuts import NUTSSettings


def kernel(text: str, key: str) -> Kernel:
    """params.yaml's kernel expression at `key` (``gp.kernel``, ``bayesopt.kernel``)."""
    return parse_kernel(text, key)


def log_normal(params: LogNormalParams) -> LogNormalPrior:
    return LogNormalPrior(params.loc, params.scale)


def optional_log_normal(params: LogNormalParams | None) -> LogNormalPrior | None:
    return None if params is None else log_normal(params)


def gp_model(x: np.ndarray, y: np.ndarray, noise: float, priors: GPPriorParams, kernel: Kernel) -> GPModel:
    return GPModel(
        x=np.asarray(x, dtype=float),
        y=np.asarray(y, dtype=float),
        noise=noise,
        variance_prior=log_normal(priors.variance),
        lengthscale_prior=log_normal(priors.lengthscale),
        kernel=kernel,
        alpha_prior=optional_log_normal(priors.alpha),
        period_prior=optional_log_normal(priors.period),
    )


def nuts_settings(params: NUTSParams, seed_offset: int = 0) -> NUTSSettings:
    return NUTSSettings(**{**params.model_dump(), "seed": params.seed + seed_offset})
