"""Seed variation of Table 1: train and score every density model with several seeds.

    python -m studies.seed_variation [--seeds 0 1 2] [--train 10000] [--test N] [--epochs 5]
        [--iwae-samples 100] [--iwae-images 1000] [--out results/seed_variation.json]

    # the study's settings (every training image, 25 epochs, K = 1000 on params.yaml's IWAE images),
    # one process per seed on one thread each, then the seeds combined:
    python -m studies.seed_variation --study-settings --threads 1 --seeds 1 --out seed1.json
    python -m studies.seed_variation --combine seed0.json seed1.json seed2.json
    # (--models NAME ... scores only some models; --combine merges such files per seed)

For each seed (`density.seed`: weights, train/validation split, shuffling, noise, GMM start) every
model of params.yaml's `models` list is fitted and scored with the evaluate stage's code, at the
reduced settings given (the first `--train` training images, `--epochs` epochs; the whole test
set or its first `--test` images; IWAE and bits/dim on the first `--iwae-images`), plus a
continuous-Bernoulli variant (`<name>_cb`) of each untuned VAE-family model that the list lacks
(params.yaml lists `vae_cb` and `cvae_cb`), so that VAE bits/dim appear. Writes the per-seed
metrics and mean ± sd of each Table 1 metric (JSON), and the Markdown table with the differences
between models that exceed the seed spread into docs/results.md (between the markers below).
MNIST comes from data.path (run `dvc repro prepare` first).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import yaml

from pml_ops.config import parse_params
from pml_ops.core.io import write_json
from pml_ops.density import families
from pml_ops.density.data import density_split, to_unit_float
from pml_ops.density.evaluation import evaluate_model
from pml_ops.density.interface import DensityModel, FitCallbacks
from pml_ops.density.models.vae import VaeModel
from pml_ops.density.seed_spread import METRICS, comparisons, summarise
from pml_ops.density.units import dequantise

START, END = "<!-- seed-variation:start -->", "<!-- seed-variation:end -->"
STUDY_START, STUDY_END = "<!-- seed-variation-study:start -->", "<!-- seed-variation-study:end -->"
STUDY_KIND = "the study's, params.yaml"


def markers(settings: dict) -> tuple[str, str]:
    """The reduced-settings and study-settings tables each keep their own section of the doc."""
    return (STUDY_START, STUDY_END) if settings.get("kind") == STUDY_KIND else (START, END)


def settings_params(raw: dict, seed: int, args: argparse.Namespace) -> Any:
    raw = json.loads(json.dumps(raw))
    raw["density"]["seed"] = seed
    if args.threads is not None:
        raw["density"]["cpu_threads"] = args.threads
    if not args.study_settings:
        raw["density"]["subset"] = {"train": args.train, "test": args.test}
        for family in ("vae", "cvae"):
            raw[family]["training"]["epochs"] = args.epochs
        raw["evaluate"].update(iwae_samples=args.iwae_samples, iwae_images=args.iwae_images)
    return parse_params(raw)


def models(params: Any) -> list[DensityModel]:
    """Every model of the list, and a continuous-Bernoulli twin `<name>_cb` of each untuned
    Bernoulli VAE-family model whose twin the list does not hold already (params.yaml's `vae_cb`
    and `cvae_cb` are these twins: tests/unit/density/test_seed_variation.py checks their weights agree)."""
    names = families.model_names(params)
    out = []
    for name in names:
        model = families.create(params, name)
        out.append(model)
        if (
            isinstance(model, VaeModel)
            and not families.entry(params, name).tuned
            and model.architecture.decoder == "bernoulli"
            and f"{name}_cb" not in names
        ):
            arch = model.architecture.model_copy(update={"decoder": "continuous_bernoulli"})
            out.append(VaeModel(f"{name}_cb", model.family, arch, model.training, model.seed, model.device))
    return out


def run_seed(params: Any, only: list[str] | None = None) -> dict[str, dict[str, Any]]:
    split = density_split(params)
    x_train, x_test = to_unit_float(split.x_train), to_unit_float(split.x_test)
    deq = dequantise(split.x_test, params.evaluate.dequantisation_seed)
    results = {}
    for model in models(params):
        if only is not None and model.name not in only:
            continue
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


def exceeding(summary: dict[str, dict[str, Any]]) -> list[str]:
    """Markdown rows of `seed_spread.comparisons`."""
    return [
        f"| {c['metric']} | {c['models']} | {c['difference']:+.4g} | {c['two_se']:.3g} | "
        + ("exceeds | " + c["better"] if c["exceeds"] else "within | —")
        + " |"
        for c in comparisons(summary)
    ]


def markdown(summary: dict, settings: dict) -> str:
    head = "| model | " + " | ".join(label for label, _ in METRICS.values()) + " |"
    rows = [head, "|---|" + "---:|" * len(METRICS)]
    for name, s in summary.items():
        cells = [f"{s[k]['mean']:.4g} ± {s[k]['sd']:.2g}" if k in s else "—" for k in METRICS]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    pairs = ["| metric | models | difference of means | 2 x se over seeds | seed spread | better |"]
    pairs.append("|---|---|---:|---:|---|---|")
    pairs += exceeding(summary)
    start, end = markers(settings)
    return "\n".join(
        [
            start,
            f"Settings ({settings['kind']}): {json.dumps(settings)}. Mean ± sd over the seeds.",
            "",
            *rows,
            "",
            "Differences between models against the seed spread (exceeds: |difference| > 2 x its "
            "standard error over seeds). Scores in nats are compared only between models with the "
            "same observation model (the Bernoulli ELBOs among themselves); normalised densities "
            "compare in bits/dim:",
            "",
            *pairs,
            end,
        ]
    )


def write_results_section(doc: Path, section: str) -> None:
    """Replace the section between the markers that `section` starts and ends with."""
    start, end = section.split("\n", 1)[0], section.rsplit("\n", 1)[-1]
    text = doc.read_text()
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n## Seed variation of Table 1 (benchmark)\n\n" + section + "\n"
    doc.write_text(text)


def combine(paths: list[Path], out: Path, doc: Path) -> None:
    """One summary over the seeds of several result files written with the same settings."""
    results = [json.loads(path.read_text()) for path in paths]
    settings = {k: v for k, v in results[0]["settings"].items() if k != "seeds"}
    for path, result in zip(paths, results, strict=True):
        other = {k: v for k, v in result["settings"].items() if k != "seeds"}
        if other != settings:
            raise SystemExit(
                f"seed_variation: {path} has other settings than {paths[0]}: {other} != {settings}"
            )
    runs: dict[int, dict[str, dict[str, Any]]] = {}
    for result in results:  # one file per seed, or per seed and group of models
        for seed, run in result["runs"].items():
            merged = runs.setdefault(int(seed), {})
            if set(merged) & set(run):
                raise SystemExit(
                    f"seed_variation: seed {seed}: {sorted(set(merged) & set(run))} in two files"
                )
            merged.update(run)
    if len({tuple(sorted(run)) for run in runs.values()}) > 1:
        raise SystemExit(
            f"seed_variation: the seeds hold different models: { {s: sorted(r) for s, r in runs.items()} }"
        )
    settings["seeds"] = sorted(runs)
    summary = summarise(runs)
    wall = [result["wall_time_s"] for result in results]
    write_json(out, {"settings": settings, "summary": summary, "runs": runs, "wall_time_s": wall})
    write_results_section(doc, markdown(summary, settings))
    print(f"seed_variation: wrote {out} and the section of {doc}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--train", type=int, default=10000)
    parser.add_argument("--test", type=int, default=None, help="the first N test images (default: all)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--iwae-samples", type=int, default=100)
    parser.add_argument("--iwae-images", type=int, default=1000)
    parser.add_argument(
        "--study-settings", action="store_true", help="params.yaml's own settings; ignores the size options"
    )
    parser.add_argument("--models", nargs="+", default=None, help="only these models (default: all)")
    parser.add_argument(
        "--threads", type=int, default=None, help="density.cpu_threads (default: params.yaml's)"
    )
    parser.add_argument(
        "--combine",
        type=Path,
        nargs="+",
        default=None,
        help="summarise the runs of these result JSONs instead",
    )
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=Path("results/seed_variation.json"))
    parser.add_argument("--doc", type=Path, default=Path("docs/results.md"))
    args = parser.parse_args(argv)
    if args.combine:
        combine(args.combine, args.out, args.doc)
        return
    raw = yaml.safe_load(args.params.read_text())
    began = time.perf_counter()
    first = settings_params(raw, args.seeds[0], args)
    settings = {
        "kind": STUDY_KIND if args.study_settings else "reduced, not the study's",
        "seeds": args.seeds,
        "train_images": first.density.subset.train or "all",
        "epochs": {
            family: raw[family]["training"]["epochs"] if args.study_settings else args.epochs
            for family in ("vae", "cvae")
        },
        "test_images": first.density.subset.test or "all",
        "iwae_samples": first.evaluate.iwae_samples,
        "iwae_images": first.evaluate.iwae_images or "all",
        "dataset": raw["data"]["dataset"],
        "cpu_threads": first.density.cpu_threads,
    }
    runs: dict[int, dict[str, dict[str, Any]]] = {}
    for seed in args.seeds:  # the JSON is rewritten after each seed, so a stopped run keeps its seeds
        runs[seed] = run_seed(settings_params(raw, seed, args), args.models)
        summary = summarise(runs)
        elapsed = time.perf_counter() - began
        write_json(args.out, {"settings": settings, "summary": summary, "runs": runs, "wall_time_s": elapsed})
    write_results_section(args.doc, markdown(summary, settings))
    print(f"seed_variation: wrote {args.out} and the section of {args.doc}")


if __name__ == "__main__":
    main()
