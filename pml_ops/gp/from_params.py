"""Typed params -> library objects (the only place the GP code reads `pml_ops.config`)."""

from __future__ import annotations

import numpy as np

from pml_ops.config import GPPriorParams, NUTSParams
from pml_ops.gp.model import GPModel, LogNormalPrior
from pml_ops.inference.nuts import NUTSSettings


def gp_model(x: np.ndarray, y: np.ndarray, noise: float, priors: GPPriorParams) -> GPModel:
    return GPModel(
        x=np.asarray(x, dtype=float),
        y=np.asarray(y, dtype=float),
        noise=noise,
        variance_prior=LogNormalPrior(priors.variance.loc, priors.variance.scale),
        lengthscale_prior=LogNormalPrior(priors.lengthscale.loc, priors.lengthscale.scale),
    )


def nuts_settings(params: NUTSParams, seed_offset: int = 0) -> NUTSSettings:
    return NUTSSettings(**{**params.model_dump(), "seed": params.seed + seed_offset})
