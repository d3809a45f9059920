"""Fault: `pml-ops tune` overwrote the committed params_tuned.yaml with a worse study's best
(-223.6 replaced -179.2) without a word. Now the best is promoted only if it beats the recorded
score, or with --promote; both scores are printed, with the study and trial they come from."""

from __future__ import annotations

from pathlib import Path

import optuna
import yaml

from pml_ops.config import parse_params
from pml_ops.tuning.command import Overrides, describe, tune
from tests.faults.conftest import fault_params
from tests.faults.fault_helpers import SlowTask

RECORDED = {
    "cvae_tuned": {
        "architecture": {"kept": True},
        "lr": 0.0025,
        "source": {"study": "committed-study", "trial": 23, "val_elbo": -50.0},
    },
    "vae_tuned": {"architecture": {"other": "section"}, "lr": 0.001, "source": {"val_elbo": -1.0}},
}
TASK = SlowTask(epochs=1, seconds_per_epoch=0.0)  # scores between about -180 and -98


def _setup(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    params_file = fault_params(tmp_path, f"sqlite:///{tmp_path}/optuna.db", trials=2, workers=1)
    params = parse_params(yaml.safe_load(params_file.read_text()))
    best_file = Path(params.tuning.best_params_file)
    best_file.write_text(yaml.safe_dump(RECORDED))
    return params, best_file


def test_worse_study_does_not_replace_the_recorded_best(tmp_path, monkeypatch):
    params, best_file = _setup(tmp_path, monkeypatch)
    before = best_file.read_text()
    summary = tune(params, TASK, Overrides(), project_dir=tmp_path)
    assert best_file.read_text() == before
    lines = describe(summary, str(best_file))
    best = summary["best"]
    assert lines[1].startswith(f"best: trial {best['number']} of study 'cvae-architecture', validation ELBO ")
    assert lines[2] == f"recorded in {best_file}: validation ELBO -50.000 (study 'committed-study', trial 23)"
    assert lines[3] == (
        f"kept the recorded section of {best_file}: the recorded -50.000 is at least as good "
        "(--promote replaces it)"
    )


def test_promote_flag_replaces_it_and_records_study_trial_and_budget(tmp_path, monkeypatch):
    params, best_file = _setup(tmp_path, monkeypatch)
    summary = tune(params, TASK, Overrides(promote=True), project_dir=tmp_path)
    written = yaml.safe_load(best_file.read_text())
    best = summary["best"]
    trial = params.tuning.trial
    assert written["cvae_tuned"]["source"] == {
        "study": "cvae-architecture",
        "trial": best["number"],
        "val_elbo": best["value"],
        "epochs": trial.epochs,
        "train_size": trial.train_size,
        "validation_size": trial.validation_size,
    }
    assert written["cvae_tuned"]["lr"] == best["params"]["lr"]
    assert written["vae_tuned"] == RECORDED["vae_tuned"]  # other sections untouched
    assert describe(summary, str(best_file))[3].startswith(
        f"promoted to {best_file}: --promote, although the recorded -50.000 is at least as good"
    )


def test_better_study_is_promoted_without_a_flag(tmp_path, monkeypatch):
    params, best_file = _setup(tmp_path, monkeypatch)
    recorded = {**RECORDED, "cvae_tuned": {**RECORDED["cvae_tuned"], "source": {"val_elbo": -500.0}}}
    best_file.write_text(yaml.safe_dump(recorded))
    summary = tune(params, TASK, Overrides(), project_dir=tmp_path)
    assert summary["promotion"]["promoted"]
    assert summary["promotion"]["reason"] == "it beats the recorded -500.000"
    written = yaml.safe_load(best_file.read_text())["cvae_tuned"]["source"]
    study = optuna.load_study(study_name="cvae-architecture", storage=params.tuning.storage)
    assert written["trial"] == study.best_trial.number and written["val_elbo"] == study.best_value
