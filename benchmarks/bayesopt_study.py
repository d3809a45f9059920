"""Success rate of Bayesian optimisation over seeds: each acquisition of pml_ops.bayesopt and
Optuna's GPSampler on the same budget (params.yaml `bayesopt`: initial design, iterations).

    python -m benchmarks.bayesopt_study [--seeds 20] [--methods expected_improvement optuna_gp ...]

Success: best f within `bayesopt.success_tolerance` of the global minimum after the last
iteration. Results are written after every run (resumable) to --out and, at the end, logged to
MLflow as run `bayesopt-study`.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from pml_ops.bayesopt.build import bo_settings
from pml_ops.bayesopt.loop import minimise
from pml_ops.bayesopt.peer import optuna_gp_minimise
from pml_ops.config import load_params
from pml_ops.gp.objective import Expression, grid_minimum

METHODS = ["expected_improvement", "optuna_gp", "thompson", "lower_confidence_bound"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    parser.add_argument("--out", default="benchmarks/bayesopt_study.json")
    args = parser.parse_args()
    params = load_params()
    cfg = params.bayesopt
    objective = Expression(cfg.objective)
    bounds = (cfg.bounds[0], cfg.bounds[1])
    x_init = np.asarray(cfg.x_init, dtype=float)
    _, f_min = grid_minimum(objective, bounds)
    out = Path(args.out)
    runs = json.loads(out.read_text())["runs"] if out.exists() else []
    done = {(r["method"], r["seed"]) for r in runs}
    for method in args.methods:
        for seed in range(args.seeds):
            if (method, seed) in done:
                continue
            began = time.perf_counter()
            if method == "optuna_gp":
                best = optuna_gp_minimise(objective, bounds, x_init, cfg.iterations, seed)
            else:
                settings = replace(bo_settings(params), acquisition=method)
                best = minimise(objective, x_init, settings, seed, show_progress=False).best_so_far()
            runs.append(
                {
                    "method": method,
                    "seed": seed,
                    "best_so_far": best.tolist(),
                    "success": bool(best[-1] - f_min <= cfg.success_tolerance),
                    "wall_time_s": time.perf_counter() - began,
                }
            )
            print(json.dumps(runs[-1]), flush=True)
            out.write_text(json.dumps({"global_minimum": f_min, "runs": runs}, indent=1))
    table = {}
    for method in args.methods:
        mine = [r for r in runs if r["method"] == method]
        table[method] = {
            "successes": sum(r["success"] for r in mine),
            "seeds": len(mine),
            "mean_final_best": float(np.mean([r["best_so_far"][-1] for r in mine])),
            "mean_wall_time_s": float(np.mean([r["wall_time_s"] for r in mine])),
        }
    print(json.dumps(table, indent=1))
    out.write_text(json.dumps({"global_minimum": f_min, "runs": runs, "table": table}, indent=1))

    import mlflow

    from pml_ops.tracking import configure, git_commit

    configure(params.tracking)
    with mlflow.start_run(run_name="bayesopt-study"):
        mlflow.set_tags({"stage": "bayesopt-study", "git_commit": git_commit()})
        for method, row in table.items():
            mlflow.log_metrics(
                {
                    f"{method}.successes": row["successes"],
                    f"{method}.seeds": row["seeds"],
                    f"{method}.mean_final_best": row["mean_final_best"],
                }
            )
        mlflow.log_artifact(str(out))


if __name__ == "__main__":
    main()
