"""`pml-ops tune` / the tune stage: run a study, then write its summary, figures and best params."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pml_ops.config import Params
from pml_ops.io import write_json
from pml_ops.tuning.figures import draw_figures
from pml_ops.tuning.report import summarize, write_best_params
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
    )


def tune(
    params: Params, task: TuningTask, overrides: Overrides, project_dir: Path | None = None
) -> dict[str, Any]:
    """Run (or continue) the model's study; write `<output_dir>/<model>/summary.json`, its
    figures and the best-params file; log them to the study's MLflow run."""
    from mlflow.tracking import MlflowClient

    project = Path.cwd() if project_dir is None else project_dir
    plan = make_plan(params, task.model, overrides, project)
    started = time.monotonic()
    study, run_id = run_study(plan, task, params.tracking, project)
    elapsed = time.monotonic() - started

    out_dir = project / params.tuning.output_dir / task.model
    figures, skipped = draw_figures(study, out_dir / "figures")
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
    summary["mlflow_study_run"] = run_id
    best = None
    if summary["best"] is not None:
        best = write_best_params(study, task, project / params.tuning.best_params_file)
    summary["best_section"] = best
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
