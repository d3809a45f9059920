"""Fault: `pml-ops tune` overwrote the committed params_tuned.yaml with a worse study's best
(-223.6 replaced -179.2) without a word. Now the best is promoted only if it beats the recorded
score, or with --promote; both scores are printed, with the study and trial they come from."""

from __future__ import annotations

import copy
from pathlib import Path

import optuna
import pytest
import yaml

from pml_ops.config import parse_params
from pml_ops.tuning.command import Overrides, describe, tune
from pml_ops.tuning.summary import CostBudget, promote_best
from tests.helpers.faults.fault_helpers import SlowTask
from tests.helpers.faults.fault_params import fault_params

RECORDED = {
    "cvae_tuned": {
        "architecture": {"kept": True},
        "lr": 0.0025,
        "source": {"study": "committed-study", "trial": 23, "val_elbo": -50.0},
    },
    "vae_tuned": {"architecture": {"other": "section"}, "lr": 0.001, "source": {"val_elbo": -1.0}},
}
TASK = SlowTask(epochs=1, seconds_per_epoch=0.0)  # scores between about -180 and -98


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """One `tune` run of two trials against a file that records a better score (-50)."""
    tmp_path = tmp_path_factory.mktemp("promotion")
    params_file = fault_params(tmp_path, f"sqlite:///{tmp_path}/optuna.db", trials=2, workers=1)
    params = parse_params(yaml.safe_load(params_file.read_text()))
    best_file = Path(params.tuning.best_params_file)
    best_file.write_text(yaml.safe_dump(RECORDED))
    before = best_file.read_text()
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        summary = tune(params, TASK, Overrides(), project_dir=tmp_path)
    study = optuna.load_study(study_name=params.tuning.cvae.study_name, storage=params.tuning.storage)
    return params, best_file, before, summary, study


BUDGET = {"epochs": 2, "train_size": 5000, "validation_size": 2000}
COST = CostBudget(reference=1.0, max_ratio=2.0)  # SlowTask's trials all cost 1.0


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    return max(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)), key=lambda t: t.values[0])


def test_worse_study_does_not_replace_the_recorded_best(tuned):
    _, best_file, before, summary, _ = tuned
    assert best_file.read_text() == before
    lines = describe(summary, str(best_file))
    best = summary["best"]
    assert lines[1] == f"Pareto front (validation ELBO against MFLOP per image): trials [{best['number']}]"
    assert lines[2].startswith(
        f"best within the cost budget: trial {best['number']} of study 'cvae-pareto', validation ELBO "
    )
    assert lines[3] == f"recorded in {best_file}: validation ELBO -50.000 (study 'committed-study', trial 23)"
    assert lines[4] == (
        f"kept the recorded section of {best_file}: the recorded -50.000 is at least as good "
        "(--promote replaces it)"
    )


def test_promote_flag_replaces_it_and_records_study_trial_and_budget(tuned, tmp_path):
    _, _, before, _, study = tuned
    best_file = tmp_path / "params_tuned.yaml"
    best_file.write_text(before)
    promotion = promote_best(study, TASK, best_file, BUDGET, COST, force=True)
    written = yaml.safe_load(best_file.read_text())
    best = best_trial(study)
    assert written["cvae_tuned"]["source"] == {
        "study": "cvae-pareto",
        "trial": best.number,
        "val_elbo": best.values[0],
        **BUDGET,
        "mflop_per_image": 1.0,
        "cost_ratio": 1.0,
    }
    assert written["cvae_tuned"]["lr"] == best.params["lr"]
    assert written["vae_tuned"] == RECORDED["vae_tuned"]  # other sections untouched
    assert promotion.reason == "--promote, although the recorded -50.000 is at least as good"


def test_better_study_is_promoted_without_a_flag(tuned, tmp_path):
    _, _, _, _, study = tuned
    best_file = tmp_path / "params_tuned.yaml"
    recorded = copy.deepcopy(RECORDED)
    recorded["cvae_tuned"]["source"] = {"val_elbo": -500.0, "epochs": 25}
    best_file.write_text(yaml.safe_dump(recorded))
    promotion = promote_best(study, TASK, best_file, BUDGET, COST)
    assert promotion.promoted
    assert promotion.reason == (
        "it beats the recorded -500.000; note: scored with a different epochs than the recorded one"
    )
    written = yaml.safe_load(best_file.read_text())["cvae_tuned"]["source"]
    best = best_trial(study)
    assert written["trial"] == best.number and written["val_elbo"] == best.values[0]
