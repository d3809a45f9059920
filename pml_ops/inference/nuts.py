"""NUTS over any log density with its gradient: a lean numpy implementation of Stan's sampler
(multinomial NUTS with the generalised no-U-turn criterion, dual-averaging step size, windowed
mass-matrix adaptation), chains spread over worker processes when cores allow, seeded per chain
so results do not depend on the process count. The sampler knows nothing of the model: it takes
a `Target` (a picklable log density over unconstrained parameters, with its gradient and the map
back to the parameters' natural scale).

Why not Pyro's `NUTS`: the study's GP has two parameters and its potential is a 5x5 Cholesky,
some 20 microseconds in numpy; Pyro spends about a millisecond of Python and torch dispatch per
leapfrog step around it. The sampler below does the same algorithm as Stan and Pyro (tested
against Pyro's draws and against a quadrature posterior) at the cost of the potential.

A run can be warm-started from an earlier run's `Adaptation` (the BO loop refits after every new
point): each chain then starts at that run's last state with the metric estimated from that
run's draws, and its (shorter) warm-up re-tunes the step size from the previous one by dual
averaging over all its steps. Only the starting point and the metric change, not the target:
the draws are NUTS draws from the current posterior."""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from pml_ops.core.resources import usable_cpus
from pml_ops.runtime.stage import set_parent_death_signal

LogDensity = Callable[[np.ndarray], tuple[float, np.ndarray]]


class Target(Protocol):
    """What `sample_posterior` samples: a log density over unconstrained parameters (picklable,
    since chains may run in worker processes)."""

    @property
    def parameter_names(self) -> tuple[str, ...]: ...

    def log_density_and_grad(self, u: np.ndarray) -> tuple[float, np.ndarray]:
        """log p(u) up to a constant and its gradient; -inf off the support."""
        ...

    def constrain(self, draws: np.ndarray) -> dict[str, np.ndarray]:
        """Unconstrained draws (..., d) -> each parameter on its natural scale (...)."""
        ...


MAX_DELTA_ENERGY = 1000.0  # a leapfrog step whose energy error exceeds this is divergent (Stan)


@dataclass(frozen=True)
class NUTSSettings:
    num_chains: int
    warmup_steps: int
    num_samples: int
    seed: int
    parallel_chains: int | Literal["auto"]
    target_accept_prob: float
    max_tree_depth: int
    full_mass: bool
    init_radius: float


@dataclass(frozen=True)
class Adaptation:
    """What a warm start needs from a run, per chain: the last unconstrained state (chains, d),
    the step size sampling used, and an inverse mass matrix ((d,) diagonal or (d, d) dense)
    estimated from the run's draws (Stan-regularised; more draws than any warm-up window)."""

    last: np.ndarray
    step_size: tuple[float, ...]
    inverse_mass_matrix: tuple[np.ndarray, ...]


@dataclass(frozen=True)
class Posterior:
    """Draws (chains, draws) of each parameter on its natural scale."""

    samples: dict[str, np.ndarray]
    diverging: np.ndarray  # bool (chains, draws)
    wall_time_s: float
    processes: int
    adaptation: Adaptation | None = None
    num_gradients: int = 0  # leapfrog steps (= gradient evaluations) over all chains

    def flat(self, name: str) -> np.ndarray:
        return self.samples[name].reshape(-1)


def resolve_processes(parallel_chains: int | Literal["auto"], num_chains: int) -> int:
    """'auto' -> one process per chain up to the cores this process may use; 1 means in this
    process."""
    if parallel_chains == "auto":
        return max(1, min(num_chains, usable_cpus()))
    return max(1, min(num_chains, parallel_chains))


def initial_points(settings: NUTSSettings, dimension: int) -> np.ndarray:
    """Per-chain start in the unconstrained space: uniform in [-r, r] like Pyro's
    `init_to_uniform`, drawn from the run's seed. Shape (chains, dimension)."""
    rng = np.random.default_rng(settings.seed)
    radius = settings.init_radius
    return rng.uniform(-radius, radius, (settings.num_chains, dimension))


def adaptation_windows(warmup_steps: int) -> list[tuple[int, int]]:
    """Stan's warm-up schedule as [start, end) windows: a fast initial buffer (step size only),
    doubling slow windows (mass matrix, then step size restarts), a fast terminal buffer. With
    fewer than 150 warm-up steps the buffers are 15% and 10% of them (as Stan and Pyro do)."""
    if warmup_steps < 20:
        return [(0, warmup_steps)]
    start_buffer, end_buffer, window = 75, 50, 25
    if start_buffer + end_buffer + window > warmup_steps:
        start_buffer, end_buffer = int(0.15 * warmup_steps), int(0.1 * warmup_steps)
        window = warmup_steps - start_buffer - end_buffer
    windows = [(0, start_buffer)]
    end_window_start = warmup_steps - end_buffer
    start = start_buffer
    while start < end_window_start:
        size = window
        if 3 * size <= end_window_start - start:
            window = 2 * size
        else:
            size = end_window_start - start
        windows.append((start, start + size))
        start += size
    windows.append((end_window_start, warmup_steps))
    return windows


class _DualAveraging:
    """Nesterov dual averaging of log step size towards a target acceptance (Hoffman & Gelman
    2014, Stan's constants)."""

    def __init__(self, step_size: float, target: float):
        self.target, self.mu = target, math.log(10 * step_size)
        self.count, self.error_sum, self.log_step, self.log_step_avg = 0, 0.0, 0.0, 0.0

    def update(self, accept_prob: float) -> float:
        self.count += 1
        eta = 1.0 / (self.count + 10.0)
        self.error_sum = (1 - eta) * self.error_sum + eta * (self.target - min(1.0, accept_prob))
        self.log_step = self.mu - self.error_sum * math.sqrt(self.count) / 0.05
        weight = self.count**-0.75
        self.log_step_avg = (1 - weight) * self.log_step_avg + weight * self.log_step
        return math.exp(self.log_step)

    def final(self) -> float:
        return math.exp(self.log_step_avg)


def _regularised_covariance(draws: np.ndarray, full: bool) -> np.ndarray:
    """Stan's mass-matrix estimate: sample (co)variance shrunk towards 1e-3 with weight 5/(n+5)."""
    n = len(draws)
    if full:
        covariance = np.cov(draws, rowvar=False)
        return (n / (n + 5.0)) * covariance + 1e-3 * (5.0 / (n + 5.0)) * np.eye(draws.shape[1])
    return (n / (n + 5.0)) * draws.var(axis=0, ddof=1) + 1e-3 * (5.0 / (n + 5.0))


@dataclass
class _Point:
    """A point of phase space: position, log density there and its gradient, momentum."""

    q: np.ndarray
    log_density: float
    grad: np.ndarray
    p: np.ndarray


class Sampler:
    """One NUTS chain on `log_density` (position -> (log density, gradient)), Stan's algorithm.

    `inverse_mass` is a (d,) diagonal or (d, d) dense inverse metric."""

    def __init__(
        self,
        log_density: LogDensity,
        rng: np.random.Generator,
        step_size: float,
        inverse_mass: np.ndarray,
        max_tree_depth: int,
    ):
        self.log_density, self.rng, self.max_tree_depth = log_density, rng, max_tree_depth
        self.step_size = step_size
        self.set_inverse_mass(inverse_mass)
        self.num_gradients = 0

    def set_inverse_mass(self, inverse_mass: np.ndarray) -> None:
        self.inverse_mass = np.asarray(inverse_mass, dtype=float)
        self.dense = self.inverse_mass.ndim == 2
        if self.dense:  # momentum ~ N(0, M): p = L z with L L^T = M = inverse_mass^-1
            self.momentum_scale = np.linalg.cholesky(np.linalg.inv(self.inverse_mass))
        else:
            self.momentum_scale = 1.0 / np.sqrt(self.inverse_mass)

    def velocity(self, p: np.ndarray) -> np.ndarray:
        return self.inverse_mass @ p if self.dense else self.inverse_mass * p

    def draw_momentum(self) -> np.ndarray:
        z = self.rng.standard_normal(len(self.momentum_scale))
        return self.momentum_scale @ z if self.dense else self.momentum_scale * z

    def energy(self, point: _Point) -> float:
        energy = 0.5 * float(point.p @ self.velocity(point.p)) - point.log_density
        return math.inf if math.isnan(energy) else energy

    def leapfrog(self, point: _Point, step_size: float) -> _Point:
        p = point.p + 0.5 * step_size * point.grad
        q = point.q + step_size * self.velocity(p)
        log_density, grad = self.log_density(q)
        self.num_gradients += 1
        return _Point(q, log_density, grad, p + 0.5 * step_size * grad)

    def find_reasonable_step_size(self, q: np.ndarray, log_density: float, grad: np.ndarray) -> None:
        """Stan's `init_stepsize`: double or halve the step size until one leapfrog step's
        acceptance crosses 0.8, ending at the first step size past the crossing."""
        start = _Point(q, log_density, grad, self.draw_momentum())
        energy0 = self.energy(start)
        accept = math.exp(min(0.0, energy0 - self.energy(self.leapfrog(start, self.step_size))))
        direction = 1 if accept > 0.8 else -1
        for _ in range(100):  # a bound for densities flat or steep at every scale
            self.step_size *= 2.0**direction
            start.p = self.draw_momentum()
            energy0 = self.energy(start)
            accept = math.exp(min(0.0, energy0 - self.energy(self.leapfrog(start, self.step_size))))
            if (direction == 1 and not accept > 0.8) or (direction == -1 and not accept < 0.8):
                return

    def transition(self, q: np.ndarray, log_density: float, grad: np.ndarray) -> tuple[_Point, float, bool]:
        """One NUTS iteration from q: (new point, mean acceptance statistic, divergent)."""
        start = _Point(q, log_density, grad, self.draw_momentum())
        self._h0 = self.energy(start)
        self._sum_accept, self._leapfrogs, self._divergent = 0.0, 0, False
        forward = backward = sample = start
        p_sharp = self.velocity(start.p)
        p_fwd_fwd = p_fwd_bck = p_bck_fwd = p_bck_bck = start.p
        s_fwd_fwd = s_fwd_bck = s_bck_fwd = s_bck_bck = p_sharp
        rho, log_sum_weight = start.p, 0.0
        for depth in range(self.max_tree_depth):
            if self.rng.random() > 0.5:
                rho_bck, p_bck_fwd, s_bck_fwd = rho, p_fwd_fwd, s_fwd_fwd
                valid, forward, proposal, weight, rho_fwd, p_fwd_bck, s_fwd_bck, p_fwd_fwd, s_fwd_fwd = (
                    self._build(depth, forward, self.step_size)
                )
            else:
                rho_fwd, p_fwd_bck, s_fwd_bck = rho, p_bck_bck, s_bck_bck
                valid, backward, proposal, weight, rho_bck, p_bck_fwd, s_bck_fwd, p_bck_bck, s_bck_bck = (
                    self._build(depth, backward, -self.step_size)
                )
            if not valid:
                break
            if weight > log_sum_weight or self.rng.random() < math.exp(weight - log_sum_weight):
                sample = proposal  # biased progressive sampling towards the new subtree
            log_sum_weight = np.logaddexp(log_sum_weight, weight)
            rho = rho_bck + rho_fwd
            if not (
                _no_u_turn(s_bck_bck, s_fwd_fwd, rho)
                and _no_u_turn(s_bck_bck, s_fwd_bck, rho_bck + p_fwd_bck)
                and _no_u_turn(s_bck_fwd, s_fwd_fwd, rho_fwd + p_bck_fwd)
            ):
                break
        return sample, self._sum_accept / self._leapfrogs, self._divergent

    def _build(self, depth: int, edge: _Point, step_size: float):
        """Extend the trajectory from `edge` by 2**depth leapfrog steps. Returns (valid, new
        edge, proposal, log sum of weights, summed momenta, first momentum and its velocity,
        last momentum and its velocity)."""
        if depth == 0:
            point = self.leapfrog(edge, step_size)
            self._leapfrogs += 1
            log_weight = self._h0 - self.energy(point)
            self._sum_accept += 1.0 if log_weight > 0 else math.exp(log_weight)
            divergent = -log_weight > MAX_DELTA_ENERGY
            self._divergent |= divergent
            sharp = self.velocity(point.p)
            return not divergent, point, point, log_weight, point.p, point.p, sharp, point.p, sharp
        valid, edge, proposal, weight_init, rho_init, p_beg, s_beg, p_init_end, s_init_end = self._build(
            depth - 1, edge, step_size
        )
        if not valid:
            return False, edge, proposal, weight_init, rho_init, p_beg, s_beg, p_init_end, s_init_end
        valid, edge, final, weight_final, rho_final, p_final_beg, s_final_beg, p_end, s_end = self._build(
            depth - 1, edge, step_size
        )
        if not valid:
            return False, edge, final, weight_final, rho_final, p_beg, s_beg, p_end, s_end
        weight = np.logaddexp(weight_init, weight_final)
        if self.rng.random() < math.exp(weight_final - weight):  # uniform within a subtree
            proposal = final
        rho = rho_init + rho_final
        persist = (
            _no_u_turn(s_beg, s_end, rho)
            and _no_u_turn(s_beg, s_final_beg, rho_init + p_final_beg)
            and _no_u_turn(s_init_end, s_end, rho_final + p_init_end)
        )
        return persist, edge, proposal, weight, rho, p_beg, s_beg, p_end, s_end


def _no_u_turn(sharp_a: np.ndarray, sharp_b: np.ndarray, rho: np.ndarray) -> bool:
    """Betancourt's generalised criterion: both ends still move along the summed momentum."""
    return float(sharp_a @ rho) > 0 and float(sharp_b @ rho) > 0


@dataclass(frozen=True)
class ChainResult:
    draws: np.ndarray  # (num_samples, d) unconstrained
    diverging: np.ndarray  # bool (num_samples,)
    last: np.ndarray
    step_size: float
    inverse_mass: np.ndarray
    num_gradients: int


def run_chain(
    log_density: LogDensity,
    start: np.ndarray,
    warmup_steps: int,
    num_samples: int,
    rng: np.random.Generator,
    target_accept_prob: float = 0.8,
    max_tree_depth: int = 10,
    full_mass: bool = False,
    step_size: float | None = None,
    inverse_mass: np.ndarray | None = None,
    adapt_mass: bool = True,
) -> ChainResult:
    """Warm-up (adapting step size and metric on Stan's schedule), then `num_samples` draws at
    the adapted settings. `step_size` and `inverse_mass` seed the adaptation (warm start);
    without warm-up they are used as given. With `adapt_mass=False` the metric stays
    `inverse_mass` and the whole warm-up tunes the step size (one dual-averaging window)."""
    dim = len(start)
    q = np.asarray(start, dtype=float)
    log_density_q, grad = log_density(q)
    if not np.isfinite(log_density_q):
        raise ValueError(f"log density is not finite at the initial point {q}")
    if inverse_mass is None:
        inverse_mass = np.eye(dim) if full_mass else np.ones(dim)
    sampler = Sampler(log_density, rng, step_size or 1.0, inverse_mass, max_tree_depth)
    if warmup_steps:
        sampler.find_reasonable_step_size(q, log_density_q, grad)
        averaging = _DualAveraging(sampler.step_size, target_accept_prob)
        windows = adaptation_windows(warmup_steps) if adapt_mass else [(0, warmup_steps)]
        slow = {end: begin for begin, end in windows[1:-1]}  # metric windows, by their end
        window_draws: list[np.ndarray] = []
        for step in range(warmup_steps):
            point, accept, _ = sampler.transition(q, log_density_q, grad)
            q, log_density_q, grad = point.q, point.log_density, point.grad
            sampler.step_size = averaging.update(accept)
            if any(begin <= step < end for end, begin in slow.items()):
                window_draws.append(q)
            if step + 1 in slow:  # end of a slow window: new metric, restart step size
                sampler.set_inverse_mass(_regularised_covariance(np.array(window_draws), full_mass))
                window_draws = []
                sampler.find_reasonable_step_size(q, log_density_q, grad)
                averaging = _DualAveraging(sampler.step_size, target_accept_prob)
        sampler.step_size = averaging.final()
    draws = np.empty((num_samples, dim))
    diverging = np.zeros(num_samples, dtype=bool)
    for i in range(num_samples):
        point, _, diverging[i] = sampler.transition(q, log_density_q, grad)
        q, log_density_q, grad = point.q, point.log_density, point.grad
        draws[i] = q
    return ChainResult(draws, diverging, q, sampler.step_size, sampler.inverse_mass, sampler.num_gradients)


def _run_target_chain(
    target: Target,
    settings: NUTSSettings,
    chain: int,
    start: np.ndarray,
    step_size: float | None,
    inverse_mass: np.ndarray | None,
) -> ChainResult:
    """A warm start (`inverse_mass` given) keeps that metric and tunes only the step size."""
    return run_chain(
        target.log_density_and_grad,
        start,
        settings.warmup_steps,
        settings.num_samples,
        np.random.default_rng([settings.seed, chain]),
        settings.target_accept_prob,
        settings.max_tree_depth,
        settings.full_mass,
        step_size,
        inverse_mass,
        adapt_mass=inverse_mass is None,
    )


def _worker_context():
    """fork on Linux: a chain's worker needs nothing but numpy and this module, and a forked
    one starts in milliseconds where a spawned one re-imports the stage script (mlflow,
    matplotlib: seconds). Elsewhere (macOS, Windows, where fork is unsafe or absent) spawn."""
    return multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")


def _die_with_sampler(sampler: int) -> None:
    """Chain-worker initializer: SIGKILL the worker when the process that runs the chains dies
    (e.g. a SIGKILLed stage), so no worker lingers; it holds nothing that needs cleaning up."""
    set_parent_death_signal(signal.SIGKILL, sampler)


def sample_posterior(
    target: Target, settings: NUTSSettings, warm_start: Adaptation | None = None
) -> Posterior:
    """Run `settings.num_chains` NUTS chains; wall time covers warm-up, sampling and any
    process start-up. With `warm_start`, chain c starts where chain c of that run ended (its
    chain count must match) with its step size and inverse mass matrix; `init_radius` is then
    not used."""
    if warm_start is None:
        starts = initial_points(settings, len(target.parameter_names))
        step_sizes: Sequence[float | None] = [None] * settings.num_chains
        masses: Sequence[np.ndarray | None] = [None] * settings.num_chains
    else:
        if len(warm_start.last) != settings.num_chains:
            raise ValueError(f"warm start has {len(warm_start.last)} chains, settings {settings.num_chains}")
        starts, step_sizes, masses = warm_start.last, warm_start.step_size, warm_start.inverse_mass_matrix
    processes = resolve_processes(settings.parallel_chains, settings.num_chains)
    jobs = [(target, settings, c, starts[c], step_sizes[c], masses[c]) for c in range(settings.num_chains)]
    began = time.perf_counter()
    if processes == 1:
        results = [_run_target_chain(*job) for job in jobs]
    else:
        pool = ProcessPoolExecutor(
            processes, mp_context=_worker_context(), initializer=_die_with_sampler, initargs=(os.getpid(),)
        )
        with pool:
            results = list(pool.map(_run_target_chain, *zip(*jobs, strict=True)))
    wall = time.perf_counter() - began
    samples = target.constrain(np.stack([r.draws for r in results]))  # draws: (chains, draws, d)
    adaptation = Adaptation(
        last=np.stack([r.last for r in results]),
        step_size=tuple(r.step_size for r in results),
        inverse_mass_matrix=tuple(_regularised_covariance(r.draws, settings.full_mass) for r in results),
    )
    return Posterior(
        samples,
        np.stack([r.diverging for r in results]),
        wall,
        processes,
        adaptation,
        sum(r.num_gradients for r in results),
    )
