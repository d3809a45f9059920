"""Seed variation of Table 1: train and score every density model with several seeds.

    python -m benchmarks.seed_variation [--seeds 0 1 2] [--train 10000] [--epochs 5]
        [--iwae-samples 100] [--iwae-images 1000] [--out benchmarks/results/seed_variation.json]

For each seed (`density.seed`: weights, train/validation split, shuffling, noise, GMM start) every
model of params.yaml's `models` list is fitted and scored with the evaluate stage's code, at the
reduced settings given (the first `--train` training images, `--epochs` epochs; the whole test
set; IWAE and bits/dim on the first `--iwae-images`), plus a continuous-Bernoulli variant
(`<name>_cb`) of each untuned VAE-family model, so that VAE bits/dim appear. Writes the per-seed
metrics and mean ± sd of each Table 1 metric (JSON), and the Markdown table with the differences
between models that exceed the seed spread into docs/results.md (between the markers below).
MNIST comes from data.path (run `dvc repro prepare` first).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from pml_ops.config import parse_params
from pml_ops.density import registry
from pml_ops.density.data import density_split, to_unit_float
from pml_ops.density.evaluation import evaluate_model
from pml_ops.density.interface import DensityModel, FitCallbacks
from pml_ops.density.units import dequantise
from pml_ops.density.vae_model import VaeModel
from pml_ops.io import write_json

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
START, END = "<!-- seed-variation:start -->", "<!-- seed-variation:end -->"


def settings_params(raw: dict, seed: int, args: argparse.Namespace) -> Any:
    raw = json.loads(json.dumps(raw))
    raw["density"]["seed"] = seed
    raw["density"]["subset"] = {"train": args.train, "test": None}
    for family in ("vae", "cvae"):
        raw[family]["training"]["epochs"] = args.epochs
    raw["evaluate"].update(iwae_samples=args.iwae_samples, iwae_images=args.iwae_images)
    return parse_params(raw)


def models(params: Any) -> list[DensityModel]:
    """Every model of the list, and a continuous-Bernoulli twin of each untuned VAE-family model."""
    out = []
    for name in registry.model_names(params):
        model = registry.create(params, name)
        out.append(model)
        if isinstance(model, VaeModel) and not registry.entry(params, name).tuned:
            arch = model.architecture.model_copy(update={"decoder": "continuous_bernoulli"})
            out.append(VaeModel(f"{name}_cb", model.family, arch, model.training, model.seed, model.device))
    return out


def run_seed(params: Any) -> dict[str, dict[str, Any]]:
    split = density_split(params)
    x_train, x_test = to_unit_float(split.x_train), to_unit_float(split.x_test)
    deq = dequantise(split.x_test, params.evaluate.dequantisation_seed)
    results = {}
    for model in models(params):
        began = time.perf_counter()
        model.fit(split, FitCallbacks())
        metrics = evaluate_model(
            model, x_train, split.y_train, x_test, split.y_test, params.evaluate, params.density.seed, deq
        )
        metrics["wall_time_s"] = time.perf_counter() - began
        results[model.name] = metrics
        print(
            f"seed {params.density.seed} {model.name}: test score {metrics['test_score']:.2f} "
            f"({metrics['wall_time_s']:.0f} s)"
        )
    return results


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
    """Scores in nats compare only within one observation model or between normalised densities;
    bits/dim, MSE and accuracy compare across all models that have them."""
    if key not in NATS:
        return True
    return a["observation"] == b["observation"] or (a["normalised"] and b["normalised"])


def exceeding(summary: dict[str, dict[str, Any]]) -> list[str]:
    """Pairs of comparable models whose difference of seed means exceeds twice its standard error
    over seeds, 2 sqrt(sd_a^2 / n_a + sd_b^2 / n_b), per metric."""
    lines = []
    for key, (label, higher) in METRICS.items():
        scored = [(name, s) for name, s in summary.items() if key in s]
        for (a, full_a), (b, full_b) in itertools.combinations(scored, 2):
            if not comparable(key, full_a, full_b):
                continue
            sa, sb = full_a[key], full_b[key]
            se = math.sqrt(sa["sd"] ** 2 / sa["n"] + sb["sd"] ** 2 / sb["n"])
            diff = sa["mean"] - sb["mean"]
            verdict = "exceeds" if abs(diff) > 2 * se else "within"
            better = a if (diff > 0) == higher else b
            lines.append(
                f"| {label} | {a} vs {b} | {diff:+.4g} | {2 * se:.3g} | {verdict} |"
                + (f" {better} |" if verdict == "exceeds" else " — |")
            )
    return lines


def markdown(summary: dict, settings: dict) -> str:
    head = "| model | " + " | ".join(label for label, _ in METRICS.values()) + " |"
    rows = [head, "|---|" + "---:|" * len(METRICS)]
    for name, s in summary.items():
        cells = [f"{s[k]['mean']:.4g} ± {s[k]['sd']:.2g}" if k in s else "—" for k in METRICS]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    pairs = ["| metric | models | difference of means | 2 x se over seeds | seed spread | better |"]
    pairs.append("|---|---|---:|---:|---|---|")
    pairs += exceeding(summary)
    return "\n".join(
        [
            START,
            f"Settings (reduced, not the study's): {json.dumps(settings)}. Mean ± sd over the seeds.",
            "",
            *rows,
            "",
            "Differences between models against the seed spread (exceeds: |difference| > 2 x its "
            "standard error over seeds). Scores in nats are compared only between models with the "
            "same observation model (the Bernoulli ELBOs among themselves) or between normalised "
            "densities:",
            "",
            *pairs,
            END,
        ]
    )


def write_results_section(doc: Path, section: str) -> None:
    text = doc.read_text()
    if START in text and END in text:
        before, rest = text.split(START, 1)
        text = before + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n## Seed variation of Table 1 (benchmark)\n\n" + section + "\n"
    doc.write_text(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--train", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--iwae-samples", type=int, default=100)
    parser.add_argument("--iwae-images", type=int, default=1000)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/seed_variation.json"))
    parser.add_argument("--doc", type=Path, default=Path("docs/results.md"))
    args = parser.parse_args(argv)
    raw = yaml.safe_load(args.params.read_text())
    began = time.perf_counter()
    runs = {seed: run_seed(settings_params(raw, seed, args)) for seed in args.seeds}
    settings = {
        "seeds": args.seeds,
        "train_images": args.train,
        "epochs": args.epochs,
        "test_images": "all",
        "iwae_samples": args.iwae_samples,
        "iwae_images": args.iwae_images,
        "dataset": raw["data"]["dataset"],
    }
    summary = summarise(runs)
    write_json(
        args.out,
        {"settings": settings, "summary": summary, "runs": runs, "wall_time_s": time.perf_counter() - began},
    )
    write_results_section(args.doc, markdown(summary, settings))
    print(f"seed_variation: wrote {args.out} and the section of {args.doc}")


if __name__ == "__main__":
    main()
