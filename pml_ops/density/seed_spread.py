"""Seed spread of Table 1: mean ± sd of each metric over seeds, and which differences between
models exceed it (studies/seed_variation.py writes it; the report shows it)."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

NATS = {"test_score", "subset_score", "test_iwae"}  # compared only between like observation models
METRICS = {  # Table 1 metric -> (label, higher is better)
    "test_score": ("score, all test images (nats/image)", True),
    "subset_score": ("score, IWAE images (nats/image)", True),
    "test_iwae": ("IWAE, IWAE images (nats/image)", True),
    "bits_per_dim": ("bits/dim, dequantised", False),
    "test_mse_posterior_sample": ("MSE (posterior sample)", False),
    "test_mse_posterior_mean": ("MSE (posterior mean)", False),
    "test_knn_accuracy": ("k-NN accuracy", True),
}


def summarise(runs: dict[int, dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """mean, sd (ddof=1) and n over seeds of each metric of each model, with its observation model."""
    names = list(next(iter(runs.values())))
    summary: dict[str, dict[str, Any]] = {}
    for name in names:
        first = next(iter(runs.values()))[name]
        summary[name] = {"observation": first["observation"], "normalised": first["normalised"]}
        for key in METRICS:
            values = [run[name][key] for run in runs.values() if run[name].get(key) is not None]
            if values:
                v = np.asarray(values, dtype=np.float64)
                sd = float(v.std(ddof=1)) if len(v) > 1 else float("nan")
                summary[name][key] = {"mean": float(v.mean()), "sd": sd, "n": len(v)}
    return summary


def comparable(key: str, a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Scores in nats (taken at the grey levels k/255) compare only within one observation model;
    normalised densities compare across models in bits/dim, and MSE and accuracy across all."""
    return key not in NATS or a["observation"] == b["observation"]


def comparisons(summary: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every pair of comparable models per metric: the difference of seed means against twice its
    standard error over seeds, 2 sqrt(sd_a^2 / n_a + sd_b^2 / n_b); `exceeds` and the better one."""
    out = []
    for key, (label, higher) in METRICS.items():
        scored = [(name, s) for name, s in summary.items() if key in s]
        for (a, full_a), (b, full_b) in itertools.combinations(scored, 2):
            if not comparable(key, full_a, full_b):
                continue
            sa, sb = full_a[key], full_b[key]
            two_se = 2 * math.sqrt(sa["sd"] ** 2 / sa["n"] + sb["sd"] ** 2 / sb["n"])
            diff = sa["mean"] - sb["mean"]
            exceeds = abs(diff) > two_se
            out.append(
                {
                    "metric": label,
                    "models": f"{a} vs {b}",
                    "difference": diff,
                    "two_se": two_se,
                    "exceeds": exceeds,
                    "better": (a if (diff > 0) == higher else b) if exceeds else None,
                }
            )
    return out
