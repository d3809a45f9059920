"""NUTS over the GP hyperparameters: one Pyro `MCMC` per chain, chains spread over worker
processes when cores allow, seeded per chain so results do not depend on the process count."""

from __future__ import annotations

import os
import time
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
class Posterior:
    """Hyperparameter draws (chains, draws) on their natural (positive) scale."""

    samples: dict[str, np.ndarray]
    diverging: np.ndarray  # bool (chains, draws)
    wall_time_s: float
    processes: int

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


def _run_chain(
    model: GPModel, settings: NUTSSettings, implementation: Implementation, chain: int, start: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    import pyro
    import torch
    from pyro.infer.mcmc import MCMC, NUTS

    from pml_ops.gp.model import DTYPE, GPPotential, plain_gp_regression

    pyro.set_rng_seed(settings.seed * 1000 + chain)
    pyro.clear_param_store()
    options = dict(
        target_accept_prob=settings.target_accept_prob,
        max_tree_depth=settings.max_tree_depth,
        full_mass=settings.full_mass,
    )
    if implementation == "potential":
        kernel = NUTS(potential_fn=GPPotential(model), **options)
        names = UNCONSTRAINED
    else:
        kernel = NUTS(model=plain_gp_regression(model).model, **options)
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
    return samples, diverging


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def sample_posterior(
    model: GPModel, settings: NUTSSettings, implementation: Implementation = "potential"
) -> Posterior:
    """Run `settings.num_chains` NUTS chains; wall time covers warm-up, sampling and any
    process start-up."""
    starts = initial_points(settings)
    processes = resolve_processes(settings.parallel_chains, settings.num_chains)
    chains = range(settings.num_chains)
    began = time.perf_counter()
    if processes == 1:
        results = [_run_chain(model, settings, implementation, c, starts[c]) for c in chains]
    else:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(processes, mp_context=context, initializer=_init_worker) as pool:
            futures = [pool.submit(_run_chain, model, settings, implementation, c, starts[c]) for c in chains]
            results = [future.result() for future in futures]
    wall = time.perf_counter() - began
    samples = {name: np.stack([r[0][name] for r in results]) for name in HYPERPARAMETERS}
    diverging = np.stack([r[1] for r in results])
    return Posterior(samples, diverging, wall, processes)
