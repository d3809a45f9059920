"""What a study leaves behind: a JSON summary and the best-params file training stages read."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import optuna
import yaml

from pml_ops.config import load_yaml
from pml_ops.errors import ConfigError, TuningError
from pml_ops.io import atomic_path
from pml_ops.tuning.storage import redact
from pml_ops.tuning.task import COST, FAIL_REASON, MLFLOW_RUN, NO_HEARTBEAT, PRUNE_REASON, TuningTask

TrialState = optuna.trial.TrialState


def summarize(study: optuna.Study, storage: str, run: dict[str, Any]) -> dict[str, Any]:
    """Counts per state, the best trial, and every failed or pruned trial with its reason."""
    trials = study.get_trials(deepcopy=False)
    counts = {state.name.lower(): 0 for state in TrialState}
    for trial in trials:
        counts[trial.state.name.lower()] += 1
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    # A trial failed by a heartbeat check cannot carry a reason (it is finished before anyone
    # could set one); its retry names it in Optuna's `retry_history`.
    retries: dict[int, int] = {}
    for trial in trials:
        history = trial.system_attrs.get("retry_history", [])
        if history:
            retries[history[-1]] = trial.number
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
            {"number": t.number, "reason": t.user_attrs.get(FAIL_REASON, NO_HEARTBEAT)}
            | ({"retried_as": retries[t.number]} if t.number in retries else {})
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


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the (cost, value) points no other point beats on both (lower cost, higher
    value), in order of cost."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -float("inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


@dataclass(frozen=True)
class CostBudget:
    """Promotion's cost limit: trials of at most `max_ratio` x `reference_s` seconds per epoch."""

    reference_s: float  # seconds per epoch of the model's own architecture, this run
    max_ratio: float

    def ratio(self, trial: optuna.trial.FrozenTrial) -> float | None:
        cost = trial.user_attrs.get(COST)
        return None if cost is None else float(cost) / self.reference_s

    def allows(self, trial: optuna.trial.FrozenTrial) -> bool:
        ratio = self.ratio(trial)
        return ratio is not None and ratio <= self.max_ratio


def cost_summary(study: optuna.Study, budget: CostBudget | None) -> dict[str, Any]:
    """Every completed trial's cost and value, the Pareto front and the budget."""
    complete = [
        t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if COST in t.user_attrs
    ]
    points = [(float(t.user_attrs[COST]), float(cast(float, t.value))) for t in complete]
    return {
        "reference_seconds_per_epoch": None if budget is None else budget.reference_s,
        "max_epoch_time_ratio": None if budget is None else budget.max_ratio,
        "trials": [
            {"number": t.number, COST: c, "value": v} for t, (c, v) in zip(complete, points, strict=True)
        ],
        "pareto_front": [complete[i].number for i in pareto_front(points)],
    }


def section_name(model: str) -> str:
    return f"{model}_tuned"


@dataclass(frozen=True)
class Promotion:
    """What `promote_best` decided: the study's best against the one recorded in the file."""

    promoted: bool
    best: dict[str, Any]  # the study's best trial: study, trial, val_elbo
    recorded: dict[str, Any] | None  # the `source` of the section in the file before, if any
    reason: str


def _read_sections(file: Path) -> dict[str, Any]:
    if not file.is_file():
        return {}
    try:
        existing = load_yaml(file.read_text(), str(file))
    except ConfigError as error:
        raise TuningError(str(error)) from None
    existing = existing or {}
    if not isinstance(existing, dict):
        raise TuningError(f"{file}: expected a mapping of sections")
    return existing


def promote_best(
    study: optuna.Study,
    task: TuningTask,
    path: str | os.PathLike[str],
    budget: dict[str, Any],
    force: bool = False,
    cost: CostBudget | None = None,
) -> Promotion:
    """Write the study's best trial as `<model>_tuned` in the best-params file (keeping other
    sections) only if its validation ELBO beats the recorded one, or if `force`.

    `budget` (epochs, images) is recorded with the source: scores from different budgets are
    compared all the same, and the reason says so. With a `cost` budget the best is taken among
    the trials within it, and a recorded section known to be over it does not compete (one of
    unknown cost does: the safe side; --promote replaces it).
    """
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise TuningError(f"study '{study.study_name}' has no completed trial: no best parameters")
    if cost is not None:
        complete = [t for t in complete if cost.allows(t)]
        if not complete:
            raise TuningError(
                f"study '{study.study_name}': no completed trial within the cost budget "
                f"(tuning.trial.max_epoch_time_ratio={cost.max_ratio:g} x {cost.reference_s:.2f} s per epoch)"
            )
    best = max(complete, key=lambda t: float(cast(float, t.value)))
    file = Path(path)
    existing = _read_sections(file)
    name = section_name(task.model)
    source: dict[str, Any] = {
        "study": study.study_name,
        "trial": best.number,
        "val_elbo": float(cast(float, best.value)),
        **budget,
    }
    if cost is not None:
        source["epoch_time_ratio"] = cast(float, cost.ratio(best))
    previous = existing.get(name)
    recorded = previous.get("source") if isinstance(previous, dict) else None
    recorded_value = recorded.get("val_elbo") if isinstance(recorded, dict) else None
    recorded_ratio = recorded.get("epoch_time_ratio") if isinstance(recorded, dict) else None
    over_budget = (
        cost is not None and isinstance(recorded_ratio, int | float) and recorded_ratio > cost.max_ratio
    )
    if not isinstance(recorded_value, int | float):
        promoted, reason = True, f"{file} had no scored '{name}' section"
    elif over_budget:
        limit = cast(CostBudget, cost).max_ratio
        promoted = True
        reason = f"the recorded section costs {recorded_ratio:.2f}x, over the budget of {limit:g}x"
    elif float(cast(float, best.value)) > recorded_value:
        promoted, reason = True, f"it beats the recorded {recorded_value:.3f}"
    elif force:
        promoted, reason = True, f"--promote, although the recorded {recorded_value:.3f} is at least as good"
    else:
        promoted, reason = (
            False,
            f"the recorded {recorded_value:.3f} is at least as good (--promote replaces it)",
        )
    if promoted and isinstance(recorded, dict):
        differing = sorted(key for key in budget if key in recorded and recorded[key] != budget[key])
        if differing:
            reason += f"; note: scored with a different {', '.join(differing)} than the recorded one"
    if promoted:
        existing[name] = {**task.best_section(best.params), "source": source}
        header = (
            "# Best architectures found by `pml-ops tune` (one `<model>_tuned` section per model).\n"
            "# Written by the tuning run; commit it so `dvc repro` trains the tuned models from it.\n"
        )
        with atomic_path(file) as tmp:
            tmp.write_text(header + yaml.safe_dump(existing, sort_keys=True))
    return Promotion(promoted, source, recorded if isinstance(recorded, dict) else None, reason)
