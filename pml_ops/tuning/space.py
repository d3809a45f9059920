"""Search-space specs from params.yaml, turned into `trial.suggest_*` calls."""

from __future__ import annotations

from typing import Any

import optuna

from pml_ops.config import CategoricalParam, FloatParam, IntParam


def suggest(trial: optuna.Trial, name: str, spec: IntParam | FloatParam | CategoricalParam) -> Any:
    """Ask `trial` for one value of `name` drawn from `spec`."""
    if isinstance(spec, CategoricalParam):
        return trial.suggest_categorical(name, spec.choices)
    if isinstance(spec, IntParam):
        return trial.suggest_int(name, spec.low, spec.high, log=spec.log)
    return trial.suggest_float(name, spec.low, spec.high, log=spec.log)
