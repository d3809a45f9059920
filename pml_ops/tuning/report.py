"""What a study leaves behind: a JSON summary and the best-params file training stages read."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, cast

import optuna
import yaml

from pml_ops.errors import TuningError
from pml_ops.io import atomic_path
from pml_ops.tuning.storage import redact
from pml_ops.tuning.task import FAIL_REASON, MLFLOW_RUN, PRUNE_REASON, TuningTask

TrialState = optuna.trial.TrialState


def summarize(study: optuna.Study, storage: str, run: dict[str, Any]) -> dict[str, Any]:
    """Counts per state, the best trial, and every failed or pruned trial with its reason."""
    trials = study.get_trials(deepcopy=False)
    counts = {state.name.lower(): 0 for state in TrialState}
    for trial in trials:
        counts[trial.state.name.lower()] += 1
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = None
    if complete:
        trial = study.best_trial
        best = {"number": trial.number, "value": trial.value, "params": trial.params}
    return {
        "study": study.study_name,
        "storage": redact(storage),
        "direction": study.direction.name.lower(),
        "trials": len(trials),
        "states": counts,
        "best": best,
        "failed": [
            {"number": t.number, "reason": t.user_attrs.get(FAIL_REASON, "unknown")}
            for t in trials
            if t.state == TrialState.FAIL
        ],
        "pruned": [
            {"number": t.number, "reason": t.user_attrs.get(PRUNE_REASON, "")}
            for t in trials
            if t.state == TrialState.PRUNED
        ],
        "mlflow_runs": {str(t.number): t.user_attrs.get(MLFLOW_RUN) for t in trials},
        "run": run,
    }


def section_name(model: str) -> str:
    return f"{model}_tuned"


def write_best_params(study: optuna.Study, task: TuningTask, path: str | os.PathLike[str]) -> dict[str, Any]:
    """Write the best trial as `<model>_tuned` in the best-params file; keep other sections."""
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise TuningError(f"study '{study.study_name}' has no completed trial: no best parameters")
    best = study.best_trial
    file = Path(path)
    existing: dict[str, Any] = {}
    if file.is_file():
        existing = yaml.safe_load(file.read_text()) or {}
        if not isinstance(existing, dict):
            raise TuningError(f"{file}: expected a mapping of sections")
    value = float(cast(float, best.value))  # a completed trial always has a value
    section = {
        **task.best_section(best.params),
        "source": {"study": study.study_name, "trial": best.number, "val_elbo": value},
    }
    existing[section_name(task.model)] = section
    header = (
        "# Best architectures found by `pml-ops tune` (one `<model>_tuned` section per model).\n"
        "# Written by the tuning run; commit it so `dvc repro` trains the tuned models from it.\n"
    )
    with atomic_path(file) as tmp:
        tmp.write_text(header + yaml.safe_dump(existing, sort_keys=True))
    return section
