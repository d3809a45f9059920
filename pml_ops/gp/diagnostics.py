"""ArviZ view of a NUTS posterior: InferenceData (saved as NetCDF), ESS, r_hat, divergences.

ArviZ 0.x `InferenceData` is used as is (`arviz>=0.20,<1` in pyproject): ArviZ 1.x replaced it
by xarray's DataTree, whose NetCDF layout the 0.x reader does not load.
"""

from __future__ import annotations

import os

import numpy as np

from pml_ops.core.io import atomic_path
from pml_ops.inference.nuts import Posterior

# ArviZ (~1.6 s at import) is imported where it is used: the NUTS chain workers that the gp stage
# spawns on macOS and Windows re-import this module with the stage script and never need it.


def to_inference_data(posterior: Posterior):
    """One ArviZ variable per hyperparameter, named as the kernel names it (`variance`,
    `lengthscale` for a lone kernel; `rbf.variance`, ... in a sum or product)."""
    import arviz as az  # deferred: see the note at the imports

    return az.from_dict(
        posterior=dict(posterior.samples),
        sample_stats={"diverging": posterior.diverging},
    )


def save_inference_data(idata, path: str | os.PathLike[str]) -> None:
    with atomic_path(path) as tmp:
        idata.to_netcdf(str(tmp))


def summarize(idata) -> dict[str, float]:
    """Flat metrics: ess_bulk/ess_tail/r_hat/posterior_mean per hyperparameter (`ess_bulk_<name>`),
    divergences, draws."""
    import arviz as az  # deferred: see the note at the imports

    bulk = az.ess(idata, method="bulk")
    tail = az.ess(idata, method="tail")
    rhat = az.rhat(idata)
    metrics: dict[str, float] = {}
    for name in map(str, idata.posterior.data_vars):
        metrics[f"ess_bulk_{name}"] = float(bulk[name])
        metrics[f"ess_tail_{name}"] = float(tail[name])
        metrics[f"r_hat_{name}"] = float(rhat[name])
        metrics[f"posterior_mean_{name}"] = float(idata.posterior[name].mean())
    metrics["divergences"] = int(np.asarray(idata.sample_stats["diverging"]).sum())
    chains, draws = idata.posterior.sizes["chain"], idata.posterior.sizes["draw"]
    metrics["num_draws"] = int(chains * draws)
    return metrics
