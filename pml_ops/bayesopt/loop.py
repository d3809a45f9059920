"""The Bayesian-optimisation loop: fit the GP posterior by NUTS, maximise the acquisition on a
dense grid plus a bounded local refinement, evaluate, repeat.

Every iteration runs NUTS on the current data. From the second iteration on (`warm_start`), the
chains start where the previous iteration's chains ended, from their adapted step size and mass
matrix, with a shorter warm-up (`warm_start.warmup_steps`): one new point moves the posterior
little, so the long warm-up from a random start is not needed again."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
from scipy.optimize import minimize_scalar

from pml_ops.bayesopt.acquisition import expected_improvement, lower_confidence_bound
from pml_ops.core.progress import progress
from pml_ops.gp.kernels import RBF, Kernel
from pml_ops.gp.model import GPModel, LogNormalPrior
from pml_ops.gp.predict import Predictive, predict, sample_paths
from pml_ops.inference.nuts import Adaptation, NUTSSettings, sample_posterior

Acquisition = Literal["expected_improvement", "thompson", "lower_confidence_bound"]
Objective = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class WarmStart:
    enabled: bool
    warmup_steps: int


@dataclass(frozen=True)
class BOSettings:
    bounds: tuple[float, float]
    iterations: int
    acquisition: Acquisition
    lcb_kappa: float
    grid_points: int
    acquisition_samples: int
    noise: float
    variance_prior: LogNormalPrior
    lengthscale_prior: LogNormalPrior
    nuts: NUTSSettings
    warm_start: WarmStart = WarmStart(enabled=False, warmup_steps=0)
    kernel: Kernel = field(default_factory=RBF)
    alpha_prior: LogNormalPrior | None = None
    period_prior: LogNormalPrior | None = None

    def model(self, x: np.ndarray, y: np.ndarray) -> GPModel:
        """The GP fitted at an iteration: these settings' kernel, noise and priors on (x, y)."""
        return GPModel(
            x,
            y,
            self.noise,
            self.variance_prior,
            self.lengthscale_prior,
            self.kernel,
            self.alpha_prior,
            self.period_prior,
        )


@dataclass(frozen=True)
class Snapshot:
    """What iteration t saw: the data, the posterior on the grid, the acquisition, its choice."""

    iteration: int
    x: np.ndarray
    y: np.ndarray
    grid: np.ndarray
    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    utility: np.ndarray
    x_next: float


@dataclass
class BOResult:
    x: np.ndarray
    y: np.ndarray
    num_initial: int
    snapshots: dict[int, Snapshot] = field(default_factory=dict)
    divergences: list[int] = field(default_factory=list)

    def best_so_far(self) -> np.ndarray:
        """Best f after iteration t = 0 (initial design), 1, ..., T."""
        running = np.minimum.accumulate(self.y)
        return running[self.num_initial - 1 :]

    @property
    def best_x(self) -> float:
        return float(self.x[np.argmin(self.y)])


def _thin(values: np.ndarray, count: int) -> np.ndarray:
    index = np.linspace(0, len(values) - 1, min(count, len(values))).round().astype(int)
    return values[index]


def _refine(utility_at: Callable[[float], float], grid: np.ndarray, best: int) -> float:
    """Bounded local maximisation between the best grid point's neighbours."""
    low, high = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    result = minimize_scalar(lambda x: -utility_at(x), bounds=(low, high), method="bounded")
    return float(result.x) if -result.fun > utility_at(float(grid[best])) else float(grid[best])


def propose(
    model: GPModel,
    draws: dict[str, np.ndarray],
    settings: BOSettings,
    rng: np.random.Generator,
) -> tuple[float, np.ndarray, Predictive]:
    """Next x for the acquisition, given the posterior draws of each hyperparameter (flat);
    also the grid utility and the mixture predictive on it."""
    grid = np.linspace(*settings.bounds, settings.grid_points)
    thinned = {name: _thin(values, settings.acquisition_samples) for name, values in draws.items()}
    predictive = predict(model, grid, thinned)
    best_y = float(model.y.min())
    if settings.acquisition == "thompson":
        draw = rng.integers(len(next(iter(draws.values()))))
        one = {name: float(values[draw]) for name, values in draws.items()}
        utility = -sample_paths(model, grid, one, rng)
        return float(grid[np.argmax(utility)]), utility, predictive
    if settings.acquisition == "expected_improvement":
        utility = expected_improvement(predictive.mean, predictive.variance, best_y)

        def utility_at(x: float) -> float:
            point = predict(model, np.array([x]), thinned)
            return float(expected_improvement(point.mean, point.variance, best_y)[0])
    else:
        utility = lower_confidence_bound(predictive, settings.lcb_kappa)

        def utility_at(x: float) -> float:
            point = predict(model, np.array([x]), thinned)
            return float(lower_confidence_bound(point, settings.lcb_kappa)[0])

    return _refine(utility_at, grid, int(np.argmax(utility))), utility, predictive


def minimise(
    objective: Objective,
    x_init: np.ndarray,
    settings: BOSettings,
    seed: int,
    snapshot_at: tuple[int, ...] = (),
    show_progress: bool = True,
) -> BOResult:
    """Run `settings.iterations` steps of fully Bayesian BO from the evaluated `x_init`."""
    rng = np.random.default_rng(seed)
    x = np.asarray(x_init, dtype=float)
    result = BOResult(x=x, y=np.asarray(objective(x), dtype=float), num_initial=len(x))
    previous: Adaptation | None = None
    for t in progress(range(1, settings.iterations + 1), desc="bayesopt", disable=not show_progress or None):
        model = settings.model(result.x, result.y)
        nuts = replace(settings.nuts, seed=settings.nuts.seed + 1000 * seed + t)
        if previous is not None:
            nuts = replace(nuts, warmup_steps=settings.warm_start.warmup_steps)
        posterior = sample_posterior(model, nuts, warm_start=previous)
        if settings.warm_start.enabled:
            previous = posterior.adaptation
        result.divergences.append(int(posterior.diverging.sum()))
        draws = {name: posterior.flat(name) for name in model.parameter_names}
        x_next, utility, predictive = propose(model, draws, settings, rng)
        if t in snapshot_at:
            sd = np.sqrt(predictive.mixture_variance())
            mean = predictive.mixture_mean()
            grid = np.linspace(*settings.bounds, settings.grid_points)
            result.snapshots[t] = Snapshot(
                t,
                result.x.copy(),
                result.y.copy(),
                grid,
                mean,
                mean - 1.96 * sd,
                mean + 1.96 * sd,
                utility,
                x_next,
            )
        result.x = np.append(result.x, x_next)
        result.y = np.append(result.y, float(np.asarray(objective(np.array([x_next])))[0]))
    return result
