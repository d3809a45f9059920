"""Optuna's GPSampler on the same budget (same initial design, same number of evaluations): the
peer the Bayesian optimisation loop is compared with (tests/unit/bayesopt/test_bayesopt.py,
benchmarks/bayesopt_study.py); not part of the package."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import optuna


def optuna_gp_minimise(
    objective: Callable[[np.ndarray], np.ndarray],
    bounds: tuple[float, float],
    x_init: np.ndarray,
    iterations: int,
    seed: int,
) -> np.ndarray:
    """Best f after the initial design and after each of `iterations` GPSampler proposals."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.GPSampler(seed=seed, n_startup_trials=len(x_init), deterministic_objective=True)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    for x0 in x_init:
        study.enqueue_trial({"x": float(x0)})

    def evaluate(trial) -> float:
        return float(np.asarray(objective(np.array([trial.suggest_float("x", *bounds)])))[0])

    study.optimize(evaluate, n_trials=len(x_init) + iterations)
    values = np.array([trial.value for trial in study.trials])
    return np.minimum.accumulate(values)[len(x_init) - 1 :]
