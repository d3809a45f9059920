"""Cost of one evaluation of the GP's NUTS target (log density and gradient) on the study's data:
the hand-written numpy RBF path, which a lone RBF kernel takes, against torch autograd through
the kernel objects (`pml_ops.gp.model.autograd_log_joint_and_grad`), which every other kernel
takes; and autograd for each kernel, so the price of a kernel choice is on record.

    python -m benchmarks.gp_kernels [--evaluations N] [--repeats R] [--out benchmarks/results/gp_kernels.json]

Each timing is over the same `evaluations` points (u drawn around the study posterior's bulk),
repeated `repeats` times; the median and best repeat per evaluation are reported, in wall and
CPU time, with the CPU model, its load average before and after and torch's thread count. The
two RBF paths' largest differences in value and gradient over those points are recorded too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np

from pml_ops.config import load_params
from pml_ops.core.expression import Expression
from pml_ops.gp.from_params import gp_model, kernel
from pml_ops.gp.model import GPModel, autograd_log_joint_and_grad, log_joint_and_grad

KERNELS = [
    "rbf",
    "matern12",
    "matern32",
    "matern52",
    "rational_quadratic",
    "periodic",
    "rbf + periodic",
    "matern32 * periodic",
]
Evaluate = Callable[[GPModel, np.ndarray], tuple[float, np.ndarray]]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def sample_points(model: GPModel, count: int, seed: int = 0) -> np.ndarray:
    """u around the study posterior's bulk (log variance ~ 0.7, log lengthscale ~ -1.9)."""
    centre = {"variance": 0.7, "lengthscale": -1.9, "alpha": 0.0, "period": -0.5}
    base = np.array([centre[h.kind] for h in model.kernel.hyperparameters])
    return base + np.random.default_rng(seed).normal(0.0, 0.5, (count, len(base)))


def time_per_evaluation(evaluate: Evaluate, model: GPModel, points: np.ndarray, repeats: int) -> dict:
    for u in points[:20]:  # warm caches (torch constants, first-call dispatch)
        evaluate(model, u)
    wall, cpu = [], []
    for _ in range(repeats):
        began_wall, began_cpu = time.perf_counter(), time.process_time()
        for u in points:
            evaluate(model, u)
        wall.append((time.perf_counter() - began_wall) / len(points) * 1e6)
        cpu.append((time.process_time() - began_cpu) / len(points) * 1e6)
    return {
        "median_wall_us": statistics.median(wall),
        "best_wall_us": min(wall),
        "median_cpu_us": statistics.median(cpu),
        "best_cpu_us": min(cpu),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluations", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default="benchmarks/results/gp_kernels.json")
    args = parser.parse_args()
    import torch

    params = load_params()
    cfg = params.gp
    x = np.asarray(cfg.x_train, dtype=float)
    y = Expression(cfg.objective)(x)
    results: dict = {
        "cpu_model": cpu_model(),
        "cpus": len(os.sched_getaffinity(0)),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "evaluations": args.evaluations,
        "repeats": args.repeats,
        "load_average_before": os.getloadavg(),
    }
    rbf = gp_model(x, y, cfg.noise_variance, cfg.priors, kernel("rbf", "gp.kernel"))
    points = sample_points(rbf, args.evaluations)
    fast = time_per_evaluation(log_joint_and_grad, rbf, points, args.repeats)
    autograd = time_per_evaluation(autograd_log_joint_and_grad, rbf, points, args.repeats)
    pairs = [(log_joint_and_grad(rbf, u), autograd_log_joint_and_grad(rbf, u)) for u in points]
    results["rbf"] = {
        "fast_path": fast,
        "autograd": autograd,
        "autograd_over_fast_median_cpu": autograd["median_cpu_us"] / fast["median_cpu_us"],
        "autograd_over_fast_median_wall": autograd["median_wall_us"] / fast["median_wall_us"],
        "max_abs_value_difference": max(abs(a[0] - b[0]) for a, b in pairs),
        "max_abs_gradient_difference": max(float(np.abs(a[1] - b[1]).max()) for a, b in pairs),
    }
    print("rbf", json.dumps(results["rbf"], indent=1), flush=True)
    results["autograd_by_kernel"] = {}
    for text in KERNELS:
        model = gp_model(x, y, cfg.noise_variance, cfg.priors, kernel(text, "gp.kernel"))
        timing = time_per_evaluation(
            autograd_log_joint_and_grad, model, sample_points(model, args.evaluations), args.repeats
        )
        results["autograd_by_kernel"][text] = {"hyperparameters": len(model.parameter_names), **timing}
        print(text, json.dumps(timing), flush=True)
    results["load_average_after"] = os.getloadavg()
    with open(args.out, "w") as fh:
        json.dump(results, fh, indent=2)
    print(
        f"RBF, CPU per evaluation: fast path {fast['median_cpu_us']:.1f} us, "
        f"autograd {autograd['median_cpu_us']:.1f} us"
    )


if __name__ == "__main__":
    main()
