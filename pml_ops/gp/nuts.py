"""NUTS over the GP hyperparameters: one Pyro `MCMC` per chain, chains spread over worker
processes when cores allow, seeded per chain so results do not depend on the process count.

A run can be warm-started from an earlier run's `Adaptation` (the BO loop refits after every new
point): each chain then starts at that run's last state, from its adapted step size and inverse
mass matrix, and still adapts both during its (shorter) warm-up. Only the starting point of
the sampler changes, not the target: the draws are NUTS draws from the current posterior."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np

from pml_ops.gp.model import HYPERPARAMETERS, PLAIN_SITES, UNCONSTRAINED, GPModel

Implementation = Literal["potential", "plain"]


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
    """Where each chain ended: last unconstrained state (chains, 2), adapted step size per
    chain, adapted inverse mass matrix per chain (Pyro's {site-name tuple: array} blocks)."""

    last: np.ndarray
    step_size: tuple[float, ...]
    inverse_mass_matrix: tuple[dict[tuple[str, ...], np.ndarray], ...]


@dataclass(frozen=True)
class Posterior:
    """Hyperparameter draws (chains, draws) on their natural (positive) scale."""

    samples: dict[str, np.ndarray]
    diverging: np.ndarray  # bool (chains, draws)
    wall_time_s: float
    processes: int
    adaptation: Adaptation | None = None

    def flat(self, name: str) -> np.ndarray:
        return self.samples[name].reshape(-1)


def resolve_processes(parallel_chains: int | Literal["auto"], num_chains: int) -> int:
    """'auto' -> one process per chain up to os.cpu_count(); 1 means in this process."""
    if parallel_chains == "auto":
        return max(1, min(num_chains, os.cpu_count() or 1))
    return max(1, min(num_chains, parallel_chains))


def initial_points(settings: NUTSSettings) -> np.ndarray:
    """Per-chain start in the unconstrained space: uniform in [-r, r] like Pyro's
    `init_to_uniform`, drawn from the run's seed. Shape (chains, 2)."""
    rng = np.random.default_rng(settings.seed)
    radius = settings.init_radius
    return rng.uniform(-radius, radius, (settings.num_chains, len(HYPERPARAMETERS)))


def _warm_nuts(step_size: float | None, inverse_mass_matrix: dict | None, **options):
    """Pyro NUTS whose adaptation starts from a given step size and inverse mass matrix
    (Pyro re-initialises the mass matrix to identity in `setup`; this puts ours back)."""
    import torch
    from pyro.infer.mcmc import NUTS

    class WarmNUTS(NUTS):
        def _initialize_adapter(self):
            if inverse_mass_matrix is not None:
                super()._initialize_adapter()  # shapes, schedule
                self.mass_matrix_adapter.inverse_mass_matrix = {
                    sites: torch.as_tensor(value) for sites, value in inverse_mass_matrix.items()
                }
                if self._adapter.adapt_step_size:  # reasonable step size under the new metric
                    self._adapter.reset_step_size_adaptation(self._initial_params)
            else:
                super()._initialize_adapter()

    kernel_options = dict(options)
    if step_size is not None:
        kernel_options["step_size"] = step_size
    return WarmNUTS(**kernel_options)


def _run_chain(
    model: GPModel,
    settings: NUTSSettings,
    implementation: Implementation,
    chain: int,
    start: np.ndarray,
    step_size: float | None = None,
    inverse_mass_matrix: dict | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, float, dict]:
    import pyro
    import torch
    from pyro.infer.mcmc import MCMC

    from pml_ops.gp.model import DTYPE, GPPotential, plain_gp_regression

    pyro.set_rng_seed(settings.seed * 1000 + chain)
    pyro.clear_param_store()
    options = dict(
        target_accept_prob=settings.target_accept_prob,
        max_tree_depth=settings.max_tree_depth,
        full_mass=settings.full_mass,
    )
    if implementation == "potential":
        kernel = _warm_nuts(step_size, inverse_mass_matrix, potential_fn=GPPotential(model), **options)
        names = UNCONSTRAINED
    else:
        kernel = _warm_nuts(step_size, inverse_mass_matrix, model=plain_gp_regression(model).model, **options)
        names = PLAIN_SITES
    init = {names[name]: torch.tensor(start[i], dtype=DTYPE) for i, name in enumerate(HYPERPARAMETERS)}
    mcmc = MCMC(
        kernel,
        num_samples=settings.num_samples,
        warmup_steps=settings.warmup_steps,
        initial_params=init,
        disable_progbar=True,
    )
    mcmc.run()
    raw = mcmc.get_samples()
    samples = {}
    for name in HYPERPARAMETERS:
        values = raw[names[name]].detach().numpy().reshape(-1)
        samples[name] = np.exp(values) if implementation == "potential" else values
    diverging = np.zeros(settings.num_samples, dtype=bool)
    indices = [i for i in mcmc.diagnostics()["divergences"]["chain 0"] if 0 <= i < settings.num_samples]
    diverging[indices] = True
    last = np.array([raw[names[name]][-1].item() for name in HYPERPARAMETERS])
    if implementation == "plain":  # the plain model's sites are on the natural scale
        last = np.log(last)
    adapted = {sites: value.detach().numpy().copy() for sites, value in kernel.inverse_mass_matrix.items()}
    return samples, diverging, last, float(kernel.step_size), adapted


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def sample_posterior(
    model: GPModel,
    settings: NUTSSettings,
    implementation: Implementation = "potential",
    warm_start: Adaptation | None = None,
) -> Posterior:
    """Run `settings.num_chains` NUTS chains; wall time covers warm-up, sampling and any
    process start-up. With `warm_start`, chain c starts where chain c of that run ended (its
    chain count must match) with its step size and inverse mass matrix; `init_radius` is then
    not used."""
    if warm_start is None:
        starts = initial_points(settings)
        step_sizes: Sequence[float | None] = [None] * settings.num_chains
        masses: Sequence[dict[tuple[str, ...], np.ndarray] | None] = [None] * settings.num_chains
    else:
        if len(warm_start.last) != settings.num_chains:
            raise ValueError(f"warm start has {len(warm_start.last)} chains, settings {settings.num_chains}")
        starts, step_sizes, masses = warm_start.last, warm_start.step_size, warm_start.inverse_mass_matrix
    processes = resolve_processes(settings.parallel_chains, settings.num_chains)
    jobs = [
        (model, settings, implementation, c, starts[c], step_sizes[c], masses[c])
        for c in range(settings.num_chains)
    ]
    began = time.perf_counter()
    if processes == 1:
        results = [_run_chain(*job) for job in jobs]
    else:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(processes, mp_context=context, initializer=_init_worker) as pool:
            futures = [pool.submit(_run_chain, *job) for job in jobs]
            results = [future.result() for future in futures]
    wall = time.perf_counter() - began
    samples = {name: np.stack([r[0][name] for r in results]) for name in HYPERPARAMETERS}
    diverging = np.stack([r[1] for r in results])
    adaptation = Adaptation(
        last=np.stack([r[2] for r in results]),
        step_size=tuple(r[3] for r in results),
        inverse_mass_matrix=tuple(r[4] for r in results),
    )
    return Posterior(samples, diverging, wall, processes, adaptation)
