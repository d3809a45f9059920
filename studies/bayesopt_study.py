"""Success rate of Bayesian optimisation over seeds: each acquisition of pml_ops.bayesopt and
Optuna's GPSampler on the same budget (params.yaml `bayesopt`: initial design, iterations).

    python -m studies.bayesopt_study [--seeds 20] [--workers 2] [--methods expected_improvement ...]

Success: best f within `bayesopt.success_tolerance` of the global minimum after the last
iteration. Runs (method, seed) are spread over --workers processes (one torch thread each); a
run depends only on its method and seed, not on the worker or the order. Results are written
after every run (resumable: runs already in --out with the same `bayesopt` params are skipped)
and, at the end, logged to MLflow as run `bayesopt-study`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path

import numpy as np

from pml_ops.bayesopt.loop import minimise
from pml_ops.bayesopt.settings import bo_settings
from pml_ops.config import load_params
from pml_ops.core.expression import Expression, grid_minimum
from pml_ops.tracking.params import flatten
from tests.helpers.bayesopt_peer import optuna_gp_minimise

METHODS = ["expected_improvement", "optuna_gp", "thompson", "lower_confidence_bound"]


def run_one(method: str, seed: int) -> dict:
    """One optimisation run from params.yaml's `bayesopt` section."""
    import torch

    torch.set_num_threads(1)
    params = load_params()
    cfg = params.bayesopt
    objective = Expression(cfg.objective)
    bounds = (cfg.bounds[0], cfg.bounds[1])
    x_init = np.asarray(cfg.x_init, dtype=float)
    _, f_min = grid_minimum(objective, bounds)
    began = time.perf_counter()
    cpu = time.process_time()
    divergences = None
    if method == "optuna_gp":
        best = optuna_gp_minimise(objective, bounds, x_init, cfg.iterations, seed)
    else:
        settings = replace(bo_settings(params), acquisition=method)
        result = minimise(objective, x_init, settings, seed, show_progress=False)
        best, divergences = result.best_so_far(), result.divergences
    return {
        "method": method,
        "seed": seed,
        "best_so_far": best.tolist(),
        "success": bool(best[-1] - f_min <= cfg.success_tolerance),
        "wall_time_s": time.perf_counter() - began,
        "cpu_time_s": time.process_time() - cpu,
        "divergences_per_iteration": divergences,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="results/bayesopt_study.json")
    args = parser.parse_args()
    params = load_params()
    cfg = params.bayesopt
    objective = Expression(cfg.objective)
    _, f_min = grid_minimum(objective, (cfg.bounds[0], cfg.bounds[1]))
    settings = cfg.model_dump(exclude={"outputs", "plot_iterations"})
    out = Path(args.out)
    previous = json.loads(out.read_text()) if out.exists() else {}
    runs = previous.get("runs", []) if previous.get("settings") == settings else []
    done = {(r["method"], r["seed"]) for r in runs}
    todo = [(m, s) for m in args.methods for s in range(args.seeds) if (m, s) not in done]

    def save(**extra) -> None:
        runs.sort(key=lambda r: (METHODS.index(r["method"]), r["seed"]))
        record = {"settings": settings, "global_minimum": f_min, "runs": runs, **extra}
        out.write_text(json.dumps(record, indent=1))

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.workers, mp_context=context) as pool:
        futures = [pool.submit(run_one, method, seed) for method, seed in todo]
        for future in as_completed(futures):
            runs.append(future.result())
            print(json.dumps(runs[-1]), flush=True)
            save()
    table = {}
    for method in args.methods:
        mine = [r for r in runs if r["method"] == method]
        table[method] = {
            "successes": sum(r["success"] for r in mine),
            "seeds": len(mine),
            "mean_final_best": float(np.mean([r["best_so_far"][-1] for r in mine])),
            "mean_wall_time_s": float(np.mean([r["wall_time_s"] for r in mine])),
            "mean_cpu_time_s": float(np.mean([r["cpu_time_s"] for r in mine])),
            "failed_seeds": [r["seed"] for r in mine if not r["success"]],
        }
    print(json.dumps(table, indent=1))
    save(table=table, workers=args.workers)

    import mlflow

    from pml_ops.tracking.provenance import git_commit
    from pml_ops.tracking.store import configure

    configure(params.tracking)
    with mlflow.start_run(run_name="bayesopt-study"):
        mlflow.set_tags({"stage": "bayesopt-study", "git_commit": git_commit()})
        mlflow.log_params(flatten("bayesopt", settings))
        for method, row in table.items():
            mlflow.log_metrics(
                {
                    f"{method}.successes": row["successes"],
                    f"{method}.seeds": row["seeds"],
                    f"{method}.mean_final_best": row["mean_final_best"],
                    f"{method}.mean_wall_time_s": row["mean_wall_time_s"],
                    f"{method}.mean_cpu_time_s": row["mean_cpu_time_s"],
                }
            )
        mlflow.log_artifact(str(out))


if __name__ == "__main__":
    main()
