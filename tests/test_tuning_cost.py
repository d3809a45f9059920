"""Cost-aware promotion: the Pareto front of (seconds per epoch, validation ELBO), and the best
ELBO promoted only from trials within the cost budget."""

from __future__ import annotations

import optuna
import pytest
import yaml

from pml_ops.errors import TuningError
from pml_ops.tuning.report import CostBudget, cost_summary, pareto_front, promote_best
from pml_ops.tuning.task import COST
from tests.faults.fault_helpers import SlowTask

TASK = SlowTask()
BUDGET = {"epochs": 2, "train_size": 5000, "validation_size": 2000}


def test_pareto_front_keeps_the_points_nothing_beats_on_both():
    points = [(1.0, -150.0), (2.0, -140.0), (3.0, -145.0), (0.5, -160.0), (2.0, -141.0), (4.0, -130.0)]
    # (3, -145) is beaten by (2, -140); (2, -141) by (2, -140)
    assert pareto_front(points) == [3, 0, 1, 5]


def _study(trials: list[tuple[float, float]]) -> optuna.Study:
    """A study whose trials have these (seconds per epoch, validation ELBO)."""
    study = optuna.create_study(direction="maximize")
    for i, (seconds, value) in enumerate(trials):
        study.add_trial(
            optuna.trial.create_trial(
                params={"lr": 10.0 ** -(i + 1)},
                distributions={"lr": optuna.distributions.FloatDistribution(1e-9, 1.0, log=True)},
                value=value,
                user_attrs={COST: seconds},
            )
        )
    return study


def test_best_within_the_budget_is_promoted_not_the_overall_best(tmp_path):
    study = _study([(1.0, -150.0), (5.0, -120.0), (1.9, -140.0)])  # -120 costs 5x the reference
    cost = CostBudget(reference_s=1.0, max_ratio=2.0)
    best_file = tmp_path / "params_tuned.yaml"
    promotion = promote_best(study, TASK, best_file, BUDGET, cost=cost)
    assert promotion.promoted and promotion.best["trial"] == 2
    assert promotion.best["epoch_time_ratio"] == pytest.approx(1.9)
    summary = cost_summary(study, cost)
    assert summary["pareto_front"] == [0, 2, 1] and summary["max_epoch_time_ratio"] == 2.0


def test_recorded_section_over_the_budget_is_replaced_one_within_it_competes(tmp_path):
    study = _study([(1.0, -150.0)])
    cost = CostBudget(reference_s=1.0, max_ratio=2.0)
    best_file = tmp_path / "params_tuned.yaml"
    recorded = {"architecture": {}, "lr": 0.1, "source": {"val_elbo": -100.0, "epoch_time_ratio": 4.9}}
    best_file.write_text(yaml.safe_dump({"cvae_tuned": recorded}))
    promotion = promote_best(study, TASK, best_file, BUDGET, cost=cost)
    assert promotion.promoted
    assert promotion.reason.startswith("the recorded section costs 4.90x, over the budget of 2x")
    recorded["source"]["epoch_time_ratio"] = 1.5
    best_file.write_text(yaml.safe_dump({"cvae_tuned": recorded}))
    assert not promote_best(study, TASK, best_file, BUDGET, cost=cost).promoted  # -100 beats -150


def test_no_trial_within_the_budget_is_a_clear_error(tmp_path):
    study = _study([(3.0, -150.0)])
    with pytest.raises(
        TuningError, match=r"no completed trial within the cost budget .*max_epoch_time_ratio=2"
    ):
        promote_best(study, TASK, tmp_path / "p.yaml", BUDGET, cost=CostBudget(1.0, 2.0))
