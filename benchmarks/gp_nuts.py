"""ESS per second of NUTS on the study's GP: the hand-written potential (pml_ops.gp) against the
plain `pyro.contrib.gp.GPRegression` model with PyroSample priors, same NUTS settings, one run.

    python -m benchmarks.gp_nuts [--num-samples N] [--out benchmarks/gp_nuts.json]

ESS/s = min(ESS bulk of variance, of lengthscale) / wall time of the whole run (warm-up,
sampling and chain process start-up). Settings come from params.yaml `gp` unless overridden.
"""

from __future__ import annotations

import argparse
import json
import platform

import numpy as np

from pml_ops.config import load_params
from pml_ops.gp import diagnostics
from pml_ops.gp.build import gp_model, nuts_settings
from pml_ops.gp.nuts import sample_posterior
from pml_ops.gp.objective import Expression


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-samples", type=int, default=None)
    parser.add_argument("--out", default="benchmarks/gp_nuts.json")
    args = parser.parse_args()
    cfg = load_params().gp
    settings = nuts_settings(cfg.nuts)
    if args.num_samples:
        settings = type(settings)(**{**settings.__dict__, "num_samples": args.num_samples})
    objective = Expression(cfg.objective)
    x = np.asarray(cfg.x_train, dtype=float)
    model = gp_model(x, objective(x), cfg.noise_variance, cfg.priors)
    results = {"settings": settings.__dict__, "machine": platform.processor() or platform.machine()}
    for implementation in ("potential", "plain"):
        posterior = sample_posterior(model, settings, implementation)
        summary = diagnostics.summarize(diagnostics.to_inference_data(posterior))
        ess = min(summary["ess_bulk_variance"], summary["ess_bulk_lengthscale"])
        results[implementation] = {
            **summary,
            "wall_time_s": posterior.wall_time_s,
            "processes": posterior.processes,
            "min_ess_bulk_per_s": ess / posterior.wall_time_s,
        }
        print(implementation, json.dumps(results[implementation], indent=1), flush=True)
    results["speedup_ess_per_s"] = (
        results["potential"]["min_ess_bulk_per_s"] / results["plain"]["min_ess_bulk_per_s"]
    )
    print("speed-up (ESS/s):", results["speedup_ess_per_s"])
    with open(args.out, "w") as fh:
        json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
