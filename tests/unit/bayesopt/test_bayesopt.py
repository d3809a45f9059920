"""Acquisitions against hand-computed values; the loop on cheap functions; Optuna's peer."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from pml_ops.bayesopt.acquisition import expected_improvement, lower_confidence_bound
from pml_ops.bayesopt.loop import BOSettings, WarmStart, minimise
from pml_ops.gp.model import LogNormalPrior
from pml_ops.gp.predict import Predictive
from pml_ops.inference.nuts import NUTSSettings
from tests.helpers.bayesopt_peer import optuna_gp_minimise


def test_expected_improvement_hand_computed_cases():
    # mu = best: EI = sigma * phi(0) = sigma / sqrt(2 pi)
    assert expected_improvement(np.array([1.0]), np.array([4.0]), 1.0)[0] == pytest.approx(
        2.0 / np.sqrt(2 * np.pi)
    )
    # mu = 0, sigma = 1, best = 1: EI = Phi(1) + phi(1) = 0.8413447 + 0.2419707
    assert expected_improvement(np.array([0.0]), np.array([1.0]), 1.0)[0] == pytest.approx(
        1.0833155, abs=1e-6
    )
    # no uncertainty: EI = max(best - mu, 0)
    np.testing.assert_allclose(expected_improvement(np.array([0.5, 2.0]), np.zeros(2), 1.0), [0.5, 0.0])
    # averaged over hyperparameter samples (leading axis)
    mean, variance = np.array([[0.0], [1.0]]), np.array([[1.0], [4.0]])
    expected = 0.5 * ((norm.cdf(1) + norm.pdf(1)) + 2.0 * norm.pdf(0))
    assert expected_improvement(mean, variance, 1.0)[0] == pytest.approx(expected)


def test_lower_confidence_bound_uses_mixture_moments():
    predictive = Predictive(np.array([[0.0, 1.0], [2.0, 1.0]]), np.array([[1.0, 0.0], [1.0, 0.0]]))
    # point 0: mixture mean 1, variance 1 + 1 = 2; point 1: mean 1, variance 0
    np.testing.assert_allclose(lower_confidence_bound(predictive, 2.0), [-(1 - 2 * np.sqrt(2)), -1.0])


def small_settings(acquisition: str) -> BOSettings:
    return BOSettings(
        bounds=(-1.0, 2.0),
        iterations=4,
        acquisition=acquisition,
        lcb_kappa=2.0,
        grid_points=301,
        acquisition_samples=32,
        noise=1e-4,
        variance_prior=LogNormalPrior(0.0, 1.0),
        lengthscale_prior=LogNormalPrior(0.0, 1.0),
        nuts=NUTSSettings(1, 40, 40, 0, 1, 0.8, 6, False, 2.0),
        warm_start=WarmStart(enabled=True, warmup_steps=10),
    )


@pytest.mark.parametrize("acquisition", ["expected_improvement", "thompson", "lower_confidence_bound"])
def test_loop_finds_the_minimum_of_a_convex_function(acquisition):
    def objective(x):  # any Python callable on an interval, minimum 0.5 at x = 0.7
        return (np.asarray(x) - 0.7) ** 2 + 0.5

    result = minimise(
        objective,
        np.array([-1.0, 0.0, 2.0]),
        small_settings(acquisition),
        seed=1,
        snapshot_at=(2,),
        show_progress=False,
    )
    best = result.best_so_far()
    assert len(best) == 5 and np.all(np.diff(best) <= 0)
    assert best[-1] == pytest.approx(0.5, abs=0.01)
    assert abs(result.best_x - 0.7) < 0.1
    snapshot = result.snapshots[2]
    assert snapshot.x_next == result.x[3 + 1] and len(snapshot.x) == 4
    assert np.all(snapshot.lower <= snapshot.mean) and np.all(snapshot.mean <= snapshot.upper)


def test_optuna_peer_uses_the_same_budget():
    calls = []

    def objective(x):
        calls.append(float(x[0]))
        return (x - 0.3) ** 2

    best = optuna_gp_minimise(objective, (-1.0, 1.0), np.array([-1.0, 0.0, 1.0]), 3, seed=0)
    assert calls[:3] == [-1.0, 0.0, 1.0] and len(calls) == 6
    assert len(best) == 4 and best[0] == pytest.approx(0.09) and np.all(np.diff(best) <= 0)


def test_loop_is_reproducible_by_seed_with_warm_starts():
    def objective(x):
        return np.sin(3 * np.asarray(x))

    settings = small_settings("expected_improvement")
    runs = [
        minimise(objective, np.array([-1.0, 0.5, 2.0]), settings, seed, show_progress=False)
        for seed in (3, 3, 4)
    ]
    np.testing.assert_array_equal(runs[0].x, runs[1].x)
    assert not np.array_equal(runs[0].x, runs[2].x)
