"""IWAE throughput against `evaluate.memory_budget_mib`: the budget caps one pass's activations, so
it also sets how much memory every elementwise pass streams through (the cache) and how large each
temporary tensor is (glibc hands allocations above its mmap threshold, at most 32 MiB, back to the
kernel when freed, so each pass page-faults them in again).

Untrained params.yaml architectures (the cost does not depend on the weights), K =
evaluate.iwae_samples on the first `--images` test images through `VaeModel.iwae` (the stage's
code path); the budgets alternate `--rounds` times in one process after one warm-up pass each,
and the median of the rounds is reported. Run from the project root after `dvc repro prepare`:

    python benchmarks/memory_budget.py --budgets 16 32 64 128 256 --out benchmarks/results/memory_budget.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pml_ops.config import load_params
from pml_ops.core.io import write_json
from pml_ops.data.mnist import load_mnist
from pml_ops.density.architectures import build_model
from pml_ops.density.data import resolve_device
from pml_ops.density.models.vae import VaeModel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=float, nargs="+", default=[16, 32, 64, 128, 256])
    parser.add_argument("--models", nargs="+", choices=["vae", "cvae"], default=["vae", "cvae"])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    params = load_params()
    device = resolve_device(params.density.device, params.density.cpu_threads)
    k = params.evaluate.iwae_samples
    test = load_mnist(params.data.path).x_test[: args.images].reshape(-1, 784).astype(np.float32) / 255.0
    report: dict = {
        "threads": torch.get_num_threads(),
        "images": len(test),
        "iwae_samples": k,
        "load_average_1min_before": os.getloadavg()[0],
    }
    for name in args.models:
        section = getattr(params, name)  # the study's vae / cvae sections
        models = {}
        for budget in args.budgets:
            model = VaeModel(name, name, section.architecture, section.training, 0, device, budget)
            model.module_ = build_model(section.architecture, 0).to(device).eval()
            model.iwae(test[:10], k)  # warm-up
            models[budget] = model
        rates: dict[float, list[float]] = {budget: [] for budget in args.budgets}
        for _ in range(args.rounds):
            for budget, model in models.items():
                start = time.perf_counter()
                model.iwae(test, k)
                rates[budget].append(len(test) * k / (time.perf_counter() - start))
        base = statistics.median(rates[max(args.budgets)])
        report[name] = {
            str(budget): {
                "samples_per_s": statistics.median(r),
                "rounds": r,
                f"vs_{max(args.budgets):g}_mib": statistics.median(r) / base,
            }
            for budget, r in rates.items()
        }
        for budget, r in rates.items():
            rate = statistics.median(r)
            print(f"{name} {budget:g} MiB: {rate:,.0f} samples/s ({rate / base:.2f}x)")
    report["load_average_1min_after"] = os.getloadavg()[0]
    print(json.dumps(report, indent=2))
    if args.out is not None:
        write_json(args.out, report)


if __name__ == "__main__":
    main()
