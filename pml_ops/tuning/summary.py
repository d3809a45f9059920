"""What a study leaves behind: a JSON summary with Optuna's Pareto front, and the best-params
file training stages read."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import optuna
import yaml

from pml_ops.config import load_yaml
from pml_ops.core.errors import ConfigError, TuningError
from pml_ops.core.io import atomic_path
from pml_ops.tuning.storage import redact
from pml_ops.tuning.task import COST, FAIL_REASON, MLFLOW_RUN, NO_HEARTBEAT, PRUNE_REASON, SECONDS, TuningTask

TrialState = optuna.trial.TrialState


def trial_cost(trial: optuna.trial.FrozenTrial) -> float | None:
    """Training MFLOP per image: the second objective of a completed trial, counted before
    training for any other (None: failed before it was counted)."""
    if trial.values is not None and len(trial.values) > 1:
        return float(trial.values[1])
    cost = trial.user_attrs.get(COST)
    return None if cost is None else float(cost)


@dataclass(frozen=True)
class CostBudget:
    """Promotion's cost limit: trials of at most `max_ratio` x `reference` MFLOP per training
    image, the model's own params.yaml architecture's. `reference_seconds` (its measured seconds
    per epoch with the trial settings, this run) puts trials' times beside it; it limits nothing."""

    reference: float
    max_ratio: float
    reference_seconds: float | None = None

    def ratio(self, trial: optuna.trial.FrozenTrial) -> float | None:
        cost = trial_cost(trial)
        return None if cost is None else cost / self.reference

    def allows(self, trial: optuna.trial.FrozenTrial) -> bool:
        ratio = self.ratio(trial)
        return ratio is not None and ratio <= self.max_ratio

    def describe(self) -> str:
        return (
            f"tuning.trial.max_cost_ratio={self.max_ratio:g} x {self.reference:.3g} MFLOP per image "
            f"= {self.max_ratio * self.reference:.3g}"
        )


def pareto_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Optuna's Pareto front (`study.best_trials`: no completed trial has a higher validation
    ELBO at a lower or equal cost), in order of cost."""
    return sorted(study.best_trials, key=lambda t: float(t.values[1]))


def best_within_budget(study: optuna.Study, budget: CostBudget) -> optuna.trial.FrozenTrial | None:
    """The promotion candidate: the highest validation ELBO among trials within the budget (the
    cheaper on a tie). It always lies on the Pareto front, so only the front is searched."""
    within = [t for t in pareto_trials(study) if budget.allows(t)]
    return max(within, key=lambda t: (float(t.values[0]), -float(t.values[1])), default=None)


def summarize(study: optuna.Study, storage: str, run: dict[str, Any], budget: CostBudget) -> dict[str, Any]:
    """Counts per state, the best trial within the cost budget, and every failed or pruned trial
    with its reason."""
    trials = study.get_trials(deepcopy=False)
    counts = {state.name.lower(): 0 for state in TrialState}
    for trial in trials:
        counts[trial.state.name.lower()] += 1
    # A trial failed by a heartbeat check cannot carry a reason (it is finished before anyone
    # could set one); its retry names it in Optuna's `retry_history`.
    retries: dict[int, int] = {}
    for trial in trials:
        history = trial.system_attrs.get("retry_history", [])
        if history:
            retries[history[-1]] = trial.number
    best = None
    candidate = best_within_budget(study, budget)
    if candidate is not None:
        best = {
            "number": candidate.number,
            "value": float(candidate.values[0]),
            COST: float(candidate.values[1]),
            "params": candidate.params,
        }
    return {
        "study": study.study_name,
        "storage": redact(storage),
        "objectives": dict(
            zip(study.metric_names or ["value_0", "value_1"], _directions(study), strict=True)
        ),
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


def _directions(study: optuna.Study) -> list[str]:
    return [direction.name.lower() for direction in study.directions]


def cost_summary(study: optuna.Study, budget: CostBudget) -> dict[str, Any]:
    """Every completed trial's validation ELBO, cost (and its ratio to the model's own
    architecture), measured seconds per epoch, Optuna's Pareto front and the budget."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    best = best_within_budget(study, budget)

    def row(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
        seconds = trial.user_attrs.get(SECONDS)
        time_ratio = None
        if seconds is not None and budget.reference_seconds:
            time_ratio = float(seconds) / budget.reference_seconds
        return {
            "number": trial.number,
            "value": float(trial.values[0]),
            COST: float(trial.values[1]),
            "cost_ratio": budget.ratio(trial),
            SECONDS: seconds,
            "epoch_time_ratio": time_ratio,
            "params": trial.params,
        }

    return {
        "reference_mflop_per_image": budget.reference,
        "max_cost_ratio": budget.max_ratio,
        "reference_seconds_per_epoch": budget.reference_seconds,
        "trials": [row(t) for t in complete],
        "pareto_front": [t.number for t in pareto_trials(study)],
        "best_within_budget": None if best is None else best.number,
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


BEST_PARAMS_HEADER = (
    "# Best architectures found by `pml-ops tune` (one `<model>_tuned` section per model).\n"
    "# Written by the tuning run; commit it so `dvc repro` trains the tuned models from it.\n"
)


def _best_to_promote(study: optuna.Study, cost: CostBudget) -> optuna.trial.FrozenTrial:
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise TuningError(f"study '{study.study_name}' has no completed trial: no best parameters")
    best = best_within_budget(study, cost)
    if best is None:
        raise TuningError(
            f"study '{study.study_name}': no completed trial within the cost budget ({cost.describe()})"
        )
    return best


def _verdict(
    value: float, recorded: Any, cost: CostBudget, force: bool, file: Path, name: str
) -> tuple[bool, str]:
    """Whether the validation ELBO `value` replaces the `recorded` source, and why."""
    recorded_value = recorded.get("val_elbo") if isinstance(recorded, dict) else None
    recorded_ratio = recorded.get("cost_ratio") if isinstance(recorded, dict) else None
    over_budget = isinstance(recorded_ratio, int | float) and recorded_ratio > cost.max_ratio
    if not isinstance(recorded_value, int | float):
        return True, f"{file} had no scored '{name}' section"
    if over_budget:
        return (
            True,
            f"the recorded section costs {recorded_ratio:.2f}x, over the budget of {cost.max_ratio:g}x",
        )
    if value > recorded_value:
        return True, f"it beats the recorded {recorded_value:.3f}"
    if force:
        return True, f"--promote, although the recorded {recorded_value:.3f} is at least as good"
    return False, f"the recorded {recorded_value:.3f} is at least as good (--promote replaces it)"


def promote_best(
    study: optuna.Study,
    task: TuningTask,
    path: str | os.PathLike[str],
    budget: dict[str, Any],
    cost: CostBudget,
    force: bool = False,
) -> Promotion:
    """Write the best trial within the `cost` budget as `<model>_tuned` in the best-params file
    (keeping other sections) only if its validation ELBO beats the recorded one, or if `force`.

    `budget` (epochs, images) is recorded with the source: scores from different budgets are
    compared all the same, and the reason says so. A recorded section known to be over the cost
    budget does not compete (one of unknown cost does: the safe side; --promote replaces it).
    """
    best = _best_to_promote(study, cost)
    value = float(best.values[0])
    file = Path(path)
    existing = _read_sections(file)
    name = section_name(task.model)
    source: dict[str, Any] = {
        "study": study.study_name,
        "trial": best.number,
        "val_elbo": value,
        **budget,
        COST: float(best.values[1]),
        "cost_ratio": cast(float, cost.ratio(best)),
    }
    previous = existing.get(name)
    recorded = previous.get("source") if isinstance(previous, dict) else None
    promoted, reason = _verdict(value, recorded, cost, force, file, name)
    if promoted and isinstance(recorded, dict):
        differing = sorted(key for key in budget if key in recorded and recorded[key] != budget[key])
        if differing:
            reason += f"; note: scored with a different {', '.join(differing)} than the recorded one"
    if promoted:
        existing[name] = {**task.best_section(best.params), "source": source}
        with atomic_path(file) as tmp:
            tmp.write_text(BEST_PARAMS_HEADER + yaml.safe_dump(existing, sort_keys=True))
    return Promotion(promoted, source, recorded if isinstance(recorded, dict) else None, reason)
