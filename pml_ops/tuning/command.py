"""`pml-ops tune` / the tune stage: run a study, then write its summary, figures, Pareto front and
best params."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from mlflow.tracking import MlflowClient

from pml_ops.config import Params
from pml_ops.core.io import write_json
from pml_ops.tracking.store import set_shared_tag
from pml_ops.tuning.figures import draw_figures, pareto_figure
from pml_ops.tuning.storage import resolve_storage
from pml_ops.tuning.study import StudyPlan, run_study
from pml_ops.tuning.summary import CostBudget, cost_summary, promote_best, summarize
from pml_ops.tuning.task import COST, TuningTask


@dataclass(frozen=True)
class Overrides:
    """Command-line values that replace params.yaml's for one run (None: keep params.yaml's)."""

    trials: int | None = None
    timeout_s: float | None = None
    workers: int | None = None
    storage: str | None = None
    study_name: str | None = None
    promote: bool = False  # write the study's best even if it does not beat the recorded one


def make_plan(
    params: Params, model: str, overrides: Overrides, project_dir: Path, reference_cost: float
) -> StudyPlan:
    """The run's plan; `reference_cost` (the model's own MFLOP per image) sets the training cap."""
    tuning = params.tuning
    cap = tuning.trial.max_train_cost_ratio
    study = getattr(tuning, model)

    def pick(value: Any, default: Any) -> Any:
        return default if value is None else value

    return StudyPlan(
        study_name=pick(overrides.study_name, study.study_name),
        storage=resolve_storage(pick(overrides.storage, tuning.storage), project_dir),
        trials=pick(overrides.trials, tuning.trials),
        timeout_s=pick(overrides.timeout_s, tuning.timeout_s),
        workers=pick(overrides.workers, tuning.workers),
        seed=tuning.seed,
        heartbeat=tuning.heartbeat,
        max_train_cost=None if cap is None else cap * reference_cost,
    )


def _promote(
    study: optuna.Study, task: TuningTask, file: Path, cost: CostBudget, params: Params, overrides: Overrides
) -> dict[str, Any]:
    """`promote_best` with the trial settings the scores were taken at; its decision as JSON."""
    trial = params.tuning.trial
    score_budget = {
        "epochs": trial.epochs,
        "train_size": trial.train_size,
        "validation_size": trial.validation_size,
    }
    result = promote_best(study, task, file, score_budget, cost, force=overrides.promote)
    return {
        "promoted": result.promoted,
        "best": result.best,
        "recorded": result.recorded,
        "reason": result.reason,
    }


def tune(
    params: Params, task: TuningTask, overrides: Overrides, project_dir: Path | None = None
) -> dict[str, Any]:
    """Run (or continue) the model's multi-objective study; write `<output_dir>/<model>/summary.json`
    and its figures, log them and the Pareto front to the study's MLflow run, and promote the best
    validation ELBO within the cost budget to the best-params file if it beats the recorded one
    (or `overrides.promote`)."""
    project = Path.cwd() if project_dir is None else project_dir
    trial = params.tuning.trial
    reference_cost = task.cost(None)
    plan = make_plan(params, task.model, overrides, project, reference_cost)
    cost = CostBudget(reference_cost, trial.max_cost_ratio, task.reference_seconds_per_epoch())
    print(
        f"tune: {task.model}'s own architecture: {reference_cost:.3g} MFLOP per training image, "
        f"{cost.reference_seconds:.2f} s per epoch with the trial settings; promotion budget "
        f"{cost.describe()} MFLOP"
        + ("" if plan.max_train_cost is None else f"; trials over {plan.max_train_cost:.3g} are not trained")
    )
    started = time.monotonic()
    study, run_id = run_study(plan, task, params.tracking, project)
    elapsed = time.monotonic() - started

    out_dir = project / params.tuning.output_dir / task.model
    figures, skipped = draw_figures(study, out_dir / "figures")
    costs = cost_summary(study, cost)
    if costs["trials"]:
        figures.append(pareto_figure(costs, out_dir / "figures" / "pareto_front.png"))
    budget = {
        "trials_added": plan.trials,
        "workers": plan.workers,
        "timeout_s": plan.timeout_s,
        "elapsed_s": round(elapsed, 1),
        "epochs_per_trial": trial.epochs,
        "train_size": trial.train_size,
        "validation_size": trial.validation_size,
    }
    summary = summarize(study, plan.storage, budget, cost)
    summary["figures_skipped"] = skipped
    summary["cost"] = costs
    summary["mlflow_study_run"] = run_id
    summary["promotion"] = None
    if summary["states"]["complete"]:  # none within the cost budget: promote_best says so
        best_params = project / params.tuning.best_params_file
        summary["promotion"] = _promote(study, task, best_params, cost, params, overrides)
    write_json(out_dir / "summary.json", summary)
    log_study(MlflowClient(), run_id, summary, budget, figures, out_dir / "summary.json")
    return summary


def log_study(
    client: Any, run_id: str, summary: dict[str, Any], budget: dict[str, Any], figures: list[Path], file: Path
) -> None:
    """The study's MLflow run: the last run's budget (tags: a continued study's run sees a new one
    each time), counts, the best within the budget, the Pareto front as metrics and a table
    (`pareto_front.json`), the figures and the summary."""
    for key, value in budget.items():
        set_shared_tag(client, run_id, f"last_run.{key}", str(value))  # workers share the run
    step = summary["trials"]
    for state, count in summary["states"].items():
        client.log_metric(run_id, f"trials_{state}", count, step=step)
    costs = summary["cost"]
    client.log_metric(run_id, "reference_mflop_per_image", costs["reference_mflop_per_image"], step=step)
    client.log_metric(run_id, "pareto_front_size", len(costs["pareto_front"]), step=step)
    best = summary["best"]
    if best is not None:
        client.log_metric(run_id, "best_val_elbo", best["value"], step=step)
        client.log_metric(run_id, f"best_{COST}", best[COST], step=step)
    front = set(costs["pareto_front"])
    rows = sorted((t for t in costs["trials"] if t["number"] in front), key=lambda t: t[COST])
    if rows:
        table = {key: [row[key] for row in rows] for key in rows[0] if key != "params"}
        table["params"] = [json.dumps(row["params"], sort_keys=True) for row in rows]
        table["promotion_candidate"] = [row["number"] == costs["best_within_budget"] for row in rows]
        client.log_table(run_id, data=table, artifact_file="pareto_front.json")
    for figure in figures:
        client.log_artifact(run_id, str(figure), artifact_path="figures")
    client.log_artifact(run_id, str(file))
    client.set_terminated(run_id, "FINISHED")


def describe(summary: dict[str, Any], best_params_file: str) -> list[str]:
    """The lines `tune` prints: the study's trials, its best, and whether it was promoted."""
    states = ", ".join(f"{count} {state}" for state, count in summary["states"].items() if count)
    lines = [f"study '{summary['study']}' on {summary['storage']}: {summary['trials']} trials ({states})"]
    promotion = summary.get("promotion")
    if promotion is None:
        return [*lines, "no completed trial: nothing to promote"]
    best, recorded = promotion["best"], promotion["recorded"]
    front = summary["cost"]["pareto_front"]
    lines.append(f"Pareto front (validation ELBO against MFLOP per image): trials {front}")
    lines.append(
        f"best within the cost budget: trial {best['trial']} of study '{best['study']}', validation ELBO "
        f"{best['val_elbo']:.3f}, {best[COST]:.3g} MFLOP per image ({best['cost_ratio']:.2f}x the "
        f"model's own), params {summary['best']['params']}"
    )
    if recorded is not None and "val_elbo" in recorded:
        lines.append(
            f"recorded in {best_params_file}: validation ELBO {recorded['val_elbo']:.3f} "
            f"(study '{recorded.get('study')}', trial {recorded.get('trial')})"
        )
    verdict = "promoted to" if promotion["promoted"] else "kept the recorded section of"
    lines.append(f"{verdict} {best_params_file}: {promotion['reason']}")
    return lines
