"""`pml-ops tune` / the tune stage: run a study, then write its summary, figures and best params."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pml_ops.config import Params
from pml_ops.io import write_json
from pml_ops.tuning.figures import draw_figures, pareto_figure
from pml_ops.tuning.report import CostBudget, cost_summary, promote_best, summarize
from pml_ops.tuning.storage import resolve_storage
from pml_ops.tuning.study import StudyPlan, run_study
from pml_ops.tuning.task import TuningTask


@dataclass(frozen=True)
class Overrides:
    """Command-line values that replace params.yaml's for one run (None: keep params.yaml's)."""

    trials: int | None = None
    timeout_s: float | None = None
    workers: int | None = None
    storage: str | None = None
    study_name: str | None = None
    promote: bool = False  # write the study's best even if it does not beat the recorded one


def make_plan(params: Params, model: str, overrides: Overrides, project_dir: Path) -> StudyPlan:
    tuning = params.tuning
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
        pruner=tuning.pruner,
        max_epochs=tuning.trial.epochs,
        heartbeat=tuning.heartbeat,
    )


def tune(
    params: Params, task: TuningTask, overrides: Overrides, project_dir: Path | None = None
) -> dict[str, Any]:
    """Run (or continue) the model's study; write `<output_dir>/<model>/summary.json` and its
    figures, log them to the study's MLflow run, and promote the study's best to the best-params
    file if it beats the recorded one (or `overrides.promote`)."""
    from mlflow.tracking import MlflowClient

    project = Path.cwd() if project_dir is None else project_dir
    plan = make_plan(params, task.model, overrides, project)
    cost = None
    ratio = params.tuning.trial.max_epoch_time_ratio
    if ratio is not None:
        cost = CostBudget(task.reference_seconds_per_epoch(), ratio)
        print(
            f"tune: {task.model}'s own architecture takes {cost.reference_s:.2f} s per epoch with the "
            f"trial settings; promotion budget {ratio:g}x = {cost.reference_s * ratio:.2f} s"
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
        "epochs_per_trial": params.tuning.trial.epochs,
        "train_size": params.tuning.trial.train_size,
        "validation_size": params.tuning.trial.validation_size,
        "pruner": params.tuning.pruner.model_dump(),
    }
    summary = summarize(study, plan.storage, budget)
    summary["figures_skipped"] = skipped
    summary["cost"] = costs
    summary["mlflow_study_run"] = run_id
    promotion = None
    if summary["best"] is not None:
        trial = params.tuning.trial
        score_budget = {
            "epochs": trial.epochs,
            "train_size": trial.train_size,
            "validation_size": trial.validation_size,
        }
        result = promote_best(
            study,
            task,
            project / params.tuning.best_params_file,
            score_budget,
            force=overrides.promote,
            cost=cost,
        )
        promotion = {
            "promoted": result.promoted,
            "best": result.best,
            "recorded": result.recorded,
            "reason": result.reason,
        }
    summary["promotion"] = promotion
    write_json(out_dir / "summary.json", summary)

    # Tags, not params: a continued study's run sees a new budget on every `tune` run.
    client = MlflowClient()
    for key, value in budget.items():
        client.set_tag(run_id, f"last_run.{key}", str(value))
    step = summary["trials"]
    for state, count in summary["states"].items():
        client.log_metric(run_id, f"trials_{state}", count, step=step)
    if summary["best"] is not None:
        client.log_metric(run_id, "best_val_elbo", summary["best"]["value"], step=step)
    for figure in figures:
        client.log_artifact(run_id, str(figure), artifact_path="figures")
    client.log_artifact(run_id, str(out_dir / "summary.json"))
    client.set_terminated(run_id, "FINISHED")
    return summary


def describe(summary: dict[str, Any], best_params_file: str) -> list[str]:
    """The lines `tune` prints: the study's trials, its best, and whether it was promoted."""
    states = ", ".join(f"{count} {state}" for state, count in summary["states"].items() if count)
    lines = [f"study '{summary['study']}' on {summary['storage']}: {summary['trials']} trials ({states})"]
    promotion = summary.get("promotion")
    if promotion is None:
        return [*lines, "no completed trial: nothing to promote"]
    best, recorded = promotion["best"], promotion["recorded"]
    lines.append(
        f"best: trial {best['trial']} of study '{best['study']}', validation ELBO {best['val_elbo']:.3f}, "
        f"params {summary['best']['params']}"
    )
    if recorded is not None and "val_elbo" in recorded:
        lines.append(
            f"recorded in {best_params_file}: validation ELBO {recorded['val_elbo']:.3f} "
            f"(study '{recorded.get('study')}', trial {recorded.get('trial')})"
        )
    verdict = "promoted to" if promotion["promoted"] else "kept the recorded section of"
    lines.append(f"{verdict} {best_params_file}: {promotion['reason']}")
    return lines
