"""Assemble the study report from the pipeline's metrics files and figures.

Everything comes from files the earlier stages wrote (metrics JSON with `wall_time_s`, PNG
figures); nothing is recomputed here, so the report shows exactly what DVC tracked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pml_ops.config import Params
from pml_ops.core.errors import ReportError
from pml_ops.data.mnist import dataset
from pml_ops.density import families
from pml_ops.density.seed_spread import METRICS, comparisons
from pml_ops.gp.kernels import parse_kernel
from pml_ops.report.density_table import table1
from pml_ops.report.environment import collect_environment
from pml_ops.report.spec import Cell, Figure, Report, Section, Table


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ReportError(f"{path}: missing; run the stage that writes it (`dvc repro`)") from None
    except json.JSONDecodeError as error:
        raise ReportError(f"{path}: not valid JSON ({error})") from None


def _figures(folder: Path, label: str) -> list[Figure]:
    return [
        Figure(path=png, caption=f"{label}: {png.stem.replace('_', ' ')}")
        for png in sorted(folder.glob("*.png"))
    ]


def display_name(name: str) -> str:
    """`cvae_tuned` -> `CVAE (tuned)`, `vae_cb` -> `VAE (continuous Bernoulli)`."""
    return name.upper().replace("_TUNED", " (tuned)").replace("_CB", " (continuous Bernoulli)")


def density_section(params: Params, root: Path) -> tuple[Section, dict[str, float]]:
    cfg = params.density
    comparison = read_json(root / families.COMPARISON_TABLE)["models"]
    study = params.report.study
    models = families.model_names(params)
    rows = []
    for name in models:
        row = comparison.get(name)
        if row is None:
            raise ReportError(f"{families.COMPARISON_TABLE}: no row for model '{name}'")
        rows.append({**row, "model": display_name(name)})
    extra = {
        "[nats/image] study score": (
            ".6g",
            {display_name(name): study.get(name, {}).get("test_score") for name in models},
            "the number the original study reported (all test images)",
        ),
        "[MSE/pixel] study": (
            ".4f",
            {display_name(name): study.get(name, {}).get("test_mse_posterior_sample") for name in models},
            "the original study's MSE at a posterior sample",
        ),
    }
    caption = "Table 1: Test-set comparison, columns grouped by unit (mean ± standard error)"
    table = table1(rows, caption, extra, families.notes(params))
    figures: list[Figure] = []
    times = {}
    for name in models:
        paths = families.paths(params, name)
        figures += _figures(root / paths.figures, name.upper())
        times[f"train@{name}"] = read_json(root / paths.train_metrics)["wall_time_s"]
    for name in models:
        times[f"evaluate@{name}"] = read_json(root / families.paths(params, name).evaluate_metrics)[
            "wall_time_s"
        ]
    data = dataset(params.data.dataset)
    text = (
        f"Data set: {data.title} (classes: {', '.join(data.class_names)}). "
        f"All models have a 2-D latent space and are trained on the {data.title} training set "
        f"(a fraction {cfg.validation_fraction} held out for validation) and scored on the test set. "
        "CVAE (tuned) is the architecture Optuna found (params_tuned.yaml), trained like the CVAE. "
        "The continuous-Bernoulli VAE/CVAE are the study's networks and training with a decoder that "
        "is a normalised density on [0, 1]^784: trained on dequantised images (k + u)/256 (fresh "
        "noise each batch; fitted to the grey levels k/255 its likelihood grows without bound), "
        "scored in bits/dim on the dequantised test images (k + u)/256 by their IWAE, so an upper "
        "bound; the study's comparison stays the Bernoulli ELBOs."
    )
    tables = [table, *seed_variation_tables(root / params.report.seed_variation, models)]
    return Section(title=f"Density models on {data.title}", text=text, tables=tables, figures=figures), times


def seed_variation_tables(path: Path, order: list[str] | None = None) -> list[Table]:
    """Table 1 over seeds and the differences between models that exceed the seed spread, from
    studies/seed_variation.py's results (none when it has not been run). Rows follow `order`
    (Table 1's models), then any other model the results hold."""
    if not path.is_file():
        return []
    results = read_json(path)
    summary, settings = results["summary"], results["settings"]
    ranked = [name for name in order or [] if name in summary]
    summary = {name: summary[name] for name in ranked + [n for n in summary if n not in ranked]}
    epochs = settings["epochs"]  # one number, or one per family ({"vae": 2, "cvae": 2})
    if isinstance(epochs, dict):
        epochs = ", ".join(f"{family.upper()} {n}" for family, n in epochs.items())
    kind = settings.get("kind", "reduced settings")
    spread = Table(
        caption=f"Table 1 over seeds {settings['seeds']}, mean ± sd ({kind}: "
        f"{settings['train_images']} training images, {epochs} epochs, test images: "
        f"{settings['test_images']}, IWAE K = {settings['iwae_samples']} on "
        f"{settings['iwae_images']} images)",
        columns=["model", *(label for label, _ in METRICS.values())],
        rows=[
            {
                "model": display_name(name),
                **{
                    label: f"{s[key]['mean']:.4g} ± {s[key]['sd']:.2g}" if key in s else None
                    for key, (label, _) in METRICS.items()
                },
            }
            for name, s in summary.items()
        ],
    )
    pairs = [c for c in comparisons(summary) if c["exceeds"]]
    exceeding = Table(
        caption="Differences between models that exceed the seed spread (|difference of seed means| > "
        "2 x its standard error over seeds; nats compared only between like observation models)",
        columns=["metric", "models", "difference", "2 x se", "better"],
        rows=[
            {
                "metric": c["metric"],
                "models": c["models"],
                "difference": c["difference"],
                "2 x se": c["two_se"],
                "better": c["better"],
            }
            for c in pairs
        ],
        formats={"difference": "+.4g", "2 x se": ".3g"},
    )
    return [spread, exceeding]


def gp_section(params: Params, root: Path) -> tuple[Section, dict[str, float]]:
    cfg = params.gp
    metrics = read_json(root / cfg.outputs.metrics)
    # one row per hyperparameter of the kernel: `variance`, `lengthscale` for the study's RBF
    hyperparameters = parse_kernel(cfg.kernel, "gp.kernel").parameter_names
    rows: list[dict[str, Cell]] = [
        {
            "hyperparameter": name,
            "posterior mean": metrics[f"posterior_mean_{name}"],
            "ESS bulk": metrics[f"ess_bulk_{name}"],
            "ESS tail": metrics[f"ess_tail_{name}"],
            "r_hat": metrics[f"r_hat_{name}"],
        }
        for name in hyperparameters
    ]
    nuts = cfg.nuts
    text = (
        f"NUTS: {nuts.num_chains} chains, {nuts.warmup_steps} warm-up steps and {nuts.num_samples} "
        f"samples per chain; {metrics['divergences']} divergent transitions. Predictive at "
        f"x* = {cfg.predictive.x_star}: mean {metrics['predictive_mean_at_x_star']:.3f}, 95% interval "
        f"[{metrics['predictive_q025_at_x_star']:.3f}, {metrics['predictive_q975_at_x_star']:.3f}] "
        f"(true f = {metrics['true_f_at_x_star']:.3f})."
    )
    table = Table(
        caption="Posterior diagnostics (ArviZ)",
        columns=list(rows[0]),
        rows=rows,
        formats={"ESS bulk": ".0f", "ESS tail": ".0f", "r_hat": ".4f"},
    )
    section = Section(
        title="Bayesian GP fitting",
        text=text,
        tables=[table],
        figures=_figures(root / cfg.outputs.figures, "GP"),
    )
    return section, {"gp": metrics["wall_time_s"]}


def bo_study_table(study_file: Path, tolerance: float) -> Table | None:
    """Success per method over seeds, from the benchmark's results file (if it has been run)."""
    if not study_file.is_file():
        return None
    runs = read_json(study_file).get("runs", [])
    by_method: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        by_method.setdefault(run["method"], []).append(run)
    rows: list[dict[str, Cell]] = [
        {
            "method": method,
            "successes": sum(bool(run["success"]) for run in items),
            "seeds": len(items),
            "mean best f": sum(run["best_so_far"][-1] for run in items) / len(items),
        }
        for method, items in by_method.items()
    ]
    if not rows:
        return None
    return Table(
        caption=f"Success over seeds (best f within {tolerance} of the global minimum after the budget)",
        columns=["method", "successes", "seeds", "mean best f"],
        rows=rows,
        formats={"mean best f": ".4f"},
    )


def bayesopt_section(params: Params, root: Path) -> tuple[Section, dict[str, float]]:
    cfg = params.bayesopt
    metrics = read_json(root / cfg.outputs.metrics)
    history = read_json(root / cfg.outputs.history)
    run_table = Table(
        caption="This pipeline's optimisation run",
        columns=["acquisition", "best x", "best f", "global minimum f", "gap", "success"],
        rows=[
            {
                "acquisition": history["acquisition"],
                "best x": metrics["best_x"],
                "best f": metrics["best_f"],
                "global minimum f": metrics["global_minimum_f"],
                "gap": metrics["gap"],
                "success": bool(metrics["success"]),
            }
        ],
        formats={"best x": ".4f", "best f": ".4f", "global minimum f": ".4f", "gap": ".2e"},
    )
    tables = [run_table]
    study = bo_study_table(root / params.report.bo_study, cfg.success_tolerance)
    if study is not None:
        tables.append(study)
    text = (
        f"{cfg.iterations} iterations from {len(cfg.x_init)} initial points on `{cfg.objective}`, "
        f"the GP posterior refitted by NUTS at every iteration."
    )
    section = Section(
        title="Bayesian optimisation",
        text=text,
        tables=tables,
        figures=_figures(root / cfg.outputs.figures, "BO"),
    )
    return section, {"bayesopt": metrics["wall_time_s"]}


def _brief(params: dict[str, Any]) -> str:
    """Sampled params in one short line: `kernel_size=3 stride=2 lr=0.001`."""
    return " ".join(
        f"{key}={value:.2g}" if isinstance(value, float) else f"{key}={value}"
        for key, value in sorted(params.items())
    )


PARETO_COLUMNS = ["trial", "validation ELBO", "MFLOP/image", "cost ratio", "s/epoch ratio", "params", ""]
PARETO_NOTES = {
    "cost ratio": "training FLOPs per image over the model's own architecture's (counted)",
    "s/epoch ratio": "measured seconds per epoch over the own architecture's, same run",
}
PARETO_FORMATS = {"validation ELBO": ".2f", "MFLOP/image": ".3g", "cost ratio": ".2f", "s/epoch ratio": ".2f"}


def _pareto_table(model: str, summary: dict[str, Any]) -> Table:
    """One tuned model's Pareto front from its `tune` summary (with the cost block), the best
    within the budget and the promoted trial marked."""
    cost = summary["cost"]
    trials = {t["number"]: t for t in cost["trials"]}
    promotion = summary.get("promotion") or {}
    promoted = (promotion.get("best") or {}).get("trial") if promotion.get("promoted") else None
    rows: list[dict[str, Cell]] = []
    for number in cost["pareto_front"]:
        trial = trials[number]
        marks = []
        if number == cost["best_within_budget"]:
            marks.append("best within budget")
        if number == promoted:
            marks.append("promoted")
        rows.append(
            {
                "trial": number,
                "validation ELBO": trial["value"],
                "MFLOP/image": trial["mflop_per_image"],
                "cost ratio": trial["cost_ratio"],
                "s/epoch ratio": trial["epoch_time_ratio"],
                "params": _brief(trial["params"]),
                "": ", ".join(marks),
            }
        )
    return Table(
        caption=(
            f"{model.upper()} study '{summary['study']}': Pareto front ({summary['trials']} trials; "
            f"budget {cost['max_cost_ratio']:g}x the own architecture's "
            f"{cost['reference_mflop_per_image']:.3g} MFLOP per training image)"
        ),
        columns=list(PARETO_COLUMNS),
        rows=rows,
        notes=dict(PARETO_NOTES),
        formats=dict(PARETO_FORMATS),
    )


def tuning_section(params: Params, root: Path) -> Section | None:
    """Each tuned model's Pareto front (validation ELBO against training MFLOP per image), the
    promotion candidate marked, from `tune`'s summary (None when no model has been tuned)."""
    tables, figures, stale = [], [], []
    for model in ("cvae", "vae"):
        folder = root / params.tuning.output_dir / model
        if not (folder / "summary.json").is_file():
            continue
        summary = read_json(folder / "summary.json")
        if "reference_mflop_per_image" not in summary.get("cost", {}):
            stale.append(f"`{folder / 'summary.json'}`")
            continue
        tables.append(_pareto_table(model, summary))
        pareto = folder / "figures" / "pareto_front.png"
        if pareto.is_file():
            figures.append(Figure(path=pareto, caption=f"{model.upper()} tuning: Pareto front"))
    if not tables and not stale:
        return None
    text = (
        "Optuna's two-objective study (validation ELBO up, training FLOPs per image down) at the trial "
        "settings (`tuning.trial`); its Pareto front, and the best validation ELBO within the cost "
        "budget (`tuning.trial.max_cost_ratio`), promoted to params_tuned.yaml."
    )
    if stale:
        text += (
            f" Not shown: {', '.join(stale)}, written by a single-objective version of `pml-ops tune` "
            "(no Pareto front); tune again to show it."
        )
    return Section(title="Architecture tuning (Optuna)", text=text, tables=tables, figures=figures)


def build_study_report(params: Params, root: Path) -> Report:
    """The whole report: density comparison, GP diagnostics, BO results, environment, stage times."""
    prepare = read_json(root / params.data.metrics)
    stage_times = {"prepare": prepare["wall_time_s"]}
    sections = []
    for build in (density_section, gp_section, bayesopt_section):
        section, times = build(params, root)
        sections.append(section)
        stage_times.update(times)
    tuning = tuning_section(params, root)
    if tuning is not None:
        sections.insert(1, tuning)
    stage_times["compare_density"] = read_json(root / params.density.metrics_dir / "density_comparison.json")[
        "wall_time_s"
    ]
    return Report(
        title="pml-ops: probabilistic ML study report",
        sections=sections,
        environment=collect_environment(root, params.data.path),
        stage_times=stage_times,
    )
