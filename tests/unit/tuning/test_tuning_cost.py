"""Cost-aware promotion in the two-objective study: Optuna's Pareto front of (validation ELBO,
training MFLOP per image), and the best ELBO promoted only from trials within the cost budget."""

from __future__ import annotations

import optuna
import pytest
import yaml

from pml_ops.core.errors import TuningError
from pml_ops.tuning.summary import CostBudget, best_within_budget, cost_summary, promote_best
from tests.helpers.faults.fault_helpers import SlowTask

TASK = SlowTask()
BUDGET = {"epochs": 2, "train_size": 5000, "validation_size": 2000}


def _study(trials: list[tuple[float, float]]) -> optuna.Study:
    """A two-objective study whose trials have these (MFLOP per image, validation ELBO)."""
    study = optuna.create_study(directions=["maximize", "minimize"])
    for i, (cost, value) in enumerate(trials):
        study.add_trial(
            optuna.trial.create_trial(
                params={"lr": 10.0 ** -(i + 1)},
                distributions={"lr": optuna.distributions.FloatDistribution(1e-9, 1.0, log=True)},
                values=[value, cost],
                user_attrs={"seconds_per_epoch": 2.0 * cost},
            )
        )
    return study


def test_pareto_front_is_optunas_in_order_of_cost():
    study = _study([(1.0, -150.0), (2.0, -140.0), (3.0, -145.0), (0.5, -160.0), (2.0, -141.0), (4.0, -130.0)])
    # (3, -145) is beaten by (2, -140); (2, -141) by (2, -140)
    summary = cost_summary(study, CostBudget(reference=1.0, max_ratio=2.0, reference_seconds=2.0))
    assert summary["pareto_front"] == [3, 0, 1, 5]
    assert summary["best_within_budget"] == 1
    assert [t["epoch_time_ratio"] for t in summary["trials"]][:2] == [1.0, 2.0]


def test_best_within_the_budget_is_promoted_not_the_overall_best(tmp_path):
    study = _study([(1.0, -150.0), (5.0, -120.0), (1.9, -140.0)])  # -120 costs 5x the reference
    cost = CostBudget(reference=1.0, max_ratio=2.0)
    promotion = promote_best(study, TASK, tmp_path / "params_tuned.yaml", BUDGET, cost)
    assert promotion.promoted and promotion.best["trial"] == 2
    assert promotion.best["cost_ratio"] == pytest.approx(1.9)
    assert cost_summary(study, cost)["pareto_front"] == [0, 2, 1]


def test_a_tie_in_elbo_promotes_the_cheaper_trial():
    study = _study([(1.5, -140.0), (1.0, -140.0)])
    assert best_within_budget(study, CostBudget(reference=1.0, max_ratio=2.0)).number == 1


def test_recorded_section_over_the_budget_is_replaced_one_within_it_competes(tmp_path):
    study = _study([(1.0, -150.0)])
    cost = CostBudget(reference=1.0, max_ratio=2.0)
    best_file = tmp_path / "params_tuned.yaml"
    recorded = {"architecture": {}, "lr": 0.1, "source": {"val_elbo": -100.0, "cost_ratio": 4.9}}
    best_file.write_text(yaml.safe_dump({"cvae_tuned": recorded}))
    promotion = promote_best(study, TASK, best_file, BUDGET, cost)
    assert promotion.promoted
    assert promotion.reason.startswith("the recorded section costs 4.90x, over the budget of 2x")
    recorded["source"]["cost_ratio"] = 1.5
    best_file.write_text(yaml.safe_dump({"cvae_tuned": recorded}))
    assert not promote_best(study, TASK, best_file, BUDGET, cost).promoted  # -100 beats -150


def test_no_trial_within_the_budget_is_a_clear_error(tmp_path):
    study = _study([(3.0, -150.0)])
    with pytest.raises(
        TuningError,
        match=r"no completed trial within the cost budget \(tuning.trial.max_cost_ratio=2 x 1 MFLOP",
    ):
        promote_best(study, TASK, tmp_path / "p.yaml", BUDGET, CostBudget(1.0, 2.0))
