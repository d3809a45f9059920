"""Bulk-ESS per second of NUTS on the study's GP posterior, in one run: the gp stage's sampler
(pml_ops.inference.nuts), NumPyro's NUTS (the anchor; `pip install -e .[bench]`) and Pyro's NUTS on the
same potential (the stage's sampler before; tests/helpers/gp_reference.py, Pyro from `.[dev]`), same
data, priors, noise, chains, warm-up, draws, target acceptance and tree depth. Run it from the
repository root (it imports the reference from tests/).

    python -m benchmarks.gp_nuts [--num-samples N] [--skip-pyro] [--out benchmarks/gp_nuts.json]

ESS/s = min(ESS bulk of variance, of lengthscale) / wall time of the whole run (warm-up,
sampling, chain process start-up and, for NumPyro, JIT compilation). Chains run in as many
processes (NumPyro: host devices) as the stage uses. The draws are also compared by
distribution: moments and a two-sample Kolmogorov-Smirnov statistic of each sampler's log draws
against NumPyro's, and means against the quadrature posterior on a dense grid.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

from pml_ops.config import load_params
from pml_ops.core.expression import Expression
from pml_ops.gp import diagnostics
from pml_ops.gp.from_params import gp_model, nuts_settings
from pml_ops.gp.kernels import RBF
from pml_ops.gp.model import HYPERPARAMETERS, GPModel
from pml_ops.inference.nuts import (
    NUTSSettings,
    Posterior,
    initial_points,
    resolve_processes,
    sample_posterior,
)


def quadrature_moments(model: GPModel, points: int = 400) -> dict[str, float]:
    """Posterior mean and sd of log variance and log lengthscale on a dense grid (batched numpy
    slogdet/solve, independent of the sampler's LAPACK path)."""
    log_v, log_l = np.linspace(-6, 8, points), np.linspace(-6, 4, points)
    v, length = np.exp(log_v)[:, None, None, None], np.exp(log_l)[None, :, None, None]
    cov = v * np.exp(-0.5 * model.squared_distances / length**2) + model.noise_matrix
    sign, log_det = np.linalg.slogdet(cov)
    quad = np.einsum("i,abij,j->ab", model.y, np.linalg.inv(cov), model.y)
    log_post = -0.5 * quad - 0.5 * log_det
    log_post += -0.5 * ((log_v[:, None] - model.variance_prior.loc) / model.variance_prior.scale) ** 2
    log_post += -0.5 * ((log_l[None, :] - model.lengthscale_prior.loc) / model.lengthscale_prior.scale) ** 2
    log_post[sign <= 0] = -np.inf
    weights = np.exp(log_post - log_post.max())
    weights /= weights.sum()
    out = {}
    for name, grid, marginal in (("variance", log_v, weights.sum(1)), ("lengthscale", log_l, weights.sum(0))):
        mean = float(marginal @ grid)
        out[f"mean_log_{name}"] = mean
        out[f"sd_log_{name}"] = float(np.sqrt(marginal @ (grid - mean) ** 2))
    return out


def summarize(posterior: Posterior, extra: dict) -> dict:
    summary = diagnostics.summarize(diagnostics.to_inference_data(posterior))
    ess = min(summary["ess_bulk_variance"], summary["ess_bulk_lengthscale"])
    for name in HYPERPARAMETERS:
        logs = np.log(posterior.flat(name))
        summary[f"mean_log_{name}"], summary[f"sd_log_{name}"] = float(logs.mean()), float(logs.std())
    return {
        **summary,
        **extra,
        "wall_time_s": posterior.wall_time_s,
        "min_ess_bulk_per_s": ess / posterior.wall_time_s,
    }


def run_numpyro(model: GPModel, settings: NUTSSettings, processes: int, chain_method: str) -> Posterior:
    """NumPyro's NUTS on the same model: LogNormal priors (NumPyro samples their logs, as the
    stage does), MultivariateNormal likelihood with K + noise I, float64, `init_to_uniform`
    at the same radius. `chain_method` 'parallel' runs the chains on one XLA host device per
    chain (NumPyro's recommended CPU set-up), sharing the same cores; 'vectorized' runs them as
    one batched program; 'sequential' one after another."""
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={settings.num_chains}"
    began = time.perf_counter()
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import MCMC, NUTS, init_to_uniform

    jax.config.update("jax_enable_x64", True)
    x, y = jnp.asarray(model.x), jnp.asarray(model.y)

    def gp(x, y):
        variance = numpyro.sample(
            "variance", dist.LogNormal(model.variance_prior.loc, model.variance_prior.scale)
        )
        lengthscale = numpyro.sample(
            "lengthscale", dist.LogNormal(model.lengthscale_prior.loc, model.lengthscale_prior.scale)
        )
        cov = variance * jnp.exp(-0.5 * (x[:, None] - x[None, :]) ** 2 / lengthscale**2)
        cov = cov + model.noise * jnp.eye(x.shape[0])
        numpyro.sample("y", dist.MultivariateNormal(jnp.zeros(x.shape[0]), covariance_matrix=cov), obs=y)

    kernel = NUTS(
        gp,
        target_accept_prob=settings.target_accept_prob,
        max_tree_depth=settings.max_tree_depth,
        dense_mass=settings.full_mass,
        init_strategy=init_to_uniform(radius=settings.init_radius),
    )
    mcmc = MCMC(
        kernel,
        num_warmup=settings.warmup_steps,
        num_samples=settings.num_samples,
        num_chains=settings.num_chains,
        chain_method=chain_method,
        progress_bar=False,
    )
    mcmc.run(jax.random.PRNGKey(settings.seed), x, y, extra_fields=("diverging",))
    samples = {name: np.asarray(v) for name, v in mcmc.get_samples(group_by_chain=True).items()}
    diverging = np.asarray(mcmc.get_extra_fields(group_by_chain=True)["diverging"])
    wall = time.perf_counter() - began
    return Posterior({name: samples[name] for name in HYPERPARAMETERS}, diverging, wall, processes)


def _pyro_chain(model: GPModel, settings: NUTSSettings, chain: int, start: np.ndarray):
    import pyro
    import torch
    from pyro.infer.mcmc import MCMC, NUTS

    from tests.helpers.gp_reference import UNCONSTRAINED, GPPotential

    torch.set_num_threads(1)
    pyro.set_rng_seed(settings.seed * 1000 + chain)
    kernel = NUTS(
        potential_fn=GPPotential(model),
        target_accept_prob=settings.target_accept_prob,
        max_tree_depth=settings.max_tree_depth,
        full_mass=settings.full_mass,
    )
    init = {
        UNCONSTRAINED[n]: torch.tensor(start[i], dtype=torch.float64) for i, n in enumerate(HYPERPARAMETERS)
    }
    mcmc = MCMC(
        kernel,
        num_samples=settings.num_samples,
        warmup_steps=settings.warmup_steps,
        initial_params=init,
        disable_progbar=True,
    )
    mcmc.run()
    raw = mcmc.get_samples()
    diverging = np.zeros(settings.num_samples, dtype=bool)
    indices = [i for i in mcmc.diagnostics()["divergences"]["chain 0"] if 0 <= i < settings.num_samples]
    diverging[indices] = True
    return {n: np.exp(raw[UNCONSTRAINED[n]].numpy()) for n in HYPERPARAMETERS}, diverging


def run_pyro(model: GPModel, settings: NUTSSettings, processes: int) -> Posterior:
    """Pyro's NUTS on the hand-written potential, one chain per worker process (spawned, as
    the stage did before this benchmark's change)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    starts = initial_points(settings, len(HYPERPARAMETERS))
    began = time.perf_counter()
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [
            pool.submit(_pyro_chain, model, settings, chain, starts[chain])
            for chain in range(settings.num_chains)
        ]
        results = [f.result() for f in futures]
    wall = time.perf_counter() - began
    samples = {n: np.stack([r[0][n] for r in results]) for n in HYPERPARAMETERS}
    return Posterior(samples, np.stack([r[1] for r in results]), wall, processes)


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    from scipy import stats

    return float(stats.ks_2samp(a, b).statistic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-samples", type=int, default=None)
    parser.add_argument("--skip-pyro", action="store_true", help="leave out Pyro's NUTS (slowest)")
    parser.add_argument(
        "--numpyro-chain-methods",
        default="parallel,vectorized",
        help="NumPyro chain methods to run (comma-separated); the fastest is the anchor",
    )
    parser.add_argument("--out", default="benchmarks/gp_nuts.json")
    args = parser.parse_args()
    cfg = load_params().gp
    settings = nuts_settings(cfg.nuts)
    if args.num_samples:
        settings = type(settings)(**{**settings.__dict__, "num_samples": args.num_samples})
    objective = Expression(cfg.objective)
    x = np.asarray(cfg.x_train, dtype=float)
    model = gp_model(x, objective(x), cfg.noise_variance, cfg.priors, RBF())  # the study's model
    processes = resolve_processes(settings.parallel_chains, settings.num_chains)
    results: dict = {
        "settings": settings.__dict__,
        "machine": platform.processor() or platform.machine(),
        "cpus": len(os.sched_getaffinity(0)),
        "quadrature": quadrature_moments(model),
        "load_average_before": os.getloadavg(),
    }
    posteriors = {}
    runners = {"stage": lambda: sample_posterior(model, settings)}
    for method in args.numpyro_chain_methods.split(","):
        runners[f"numpyro_{method}"] = lambda method=method: run_numpyro(model, settings, processes, method)
    if not args.skip_pyro:
        runners["pyro"] = lambda: run_pyro(model, settings, processes)
    for name, runner in runners.items():
        posterior = runner()
        posteriors[name] = posterior
        extra = {"processes": posterior.processes, "load_average_after": os.getloadavg()}
        if posterior.num_gradients:
            extra["gradient_evaluations"] = posterior.num_gradients
        results[name] = summarize(posterior, extra)
        print(name, json.dumps(results[name], indent=1), flush=True)
    numpyro_runs = [name for name in results if name.startswith("numpyro_")]
    anchor = max(numpyro_runs, key=lambda name: results[name]["min_ess_bulk_per_s"])
    results["anchor"] = anchor
    for name in posteriors:
        if name != anchor:
            results[name]["ks_log_draws_vs_anchor"] = {
                p: ks_statistic(np.log(posteriors[name].flat(p)), np.log(posteriors[anchor].flat(p)))
                for p in HYPERPARAMETERS
            }
    results["stage_over_numpyro_ess_per_s"] = (
        results["stage"]["min_ess_bulk_per_s"] / results[anchor]["min_ess_bulk_per_s"]
    )
    print(f"stage / {anchor} (ESS/s):", results["stage_over_numpyro_ess_per_s"])
    with open(args.out, "w") as fh:
        json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
