"""The pruner named in params.yaml (`tuning.pruner`)."""

from __future__ import annotations

import optuna

from pml_ops.config import HyperbandPrunerParams, MedianPrunerParams, PrunerParams


def build_pruner(params: PrunerParams, max_epochs: int) -> optuna.pruners.BasePruner:
    """Median or Hyperband pruning on the per-epoch validation ELBO (epochs are the resource)."""
    if isinstance(params, MedianPrunerParams):
        return optuna.pruners.MedianPruner(
            n_startup_trials=params.startup_trials, n_warmup_steps=params.warmup_epochs
        )
    if isinstance(params, HyperbandPrunerParams):
        return optuna.pruners.HyperbandPruner(
            min_resource=params.min_epochs,
            max_resource=max_epochs,
            reduction_factor=params.reduction_factor,
        )
    return optuna.pruners.NopPruner()
