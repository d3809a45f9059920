"""The registry's champion/challenger rule on a small PPCA, read back through MLflow's own client
(no pipeline); the store's location under `dvc exp` and its experiment's kind."""

from __future__ import annotations

from pathlib import Path

from mlflow.tracking import MlflowClient

from pml_ops.config import TrackingParams
from pml_ops.tracking.model_registry import Comparability, register
from pml_ops.tracking.provenance import dvc_experiment
from pml_ops.tracking.store import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, configure, tracking_uri

PARAMS = TrackingParams(uri="sqlite:///mlflow.db", experiment="unit", artifact_root="mlartifacts")
KEY = Comparability("mnist", "0" * 32, 10000, "exact log-likelihood", "Gaussian", "study")


def test_store_is_the_project_root_under_dvc_exp(tmp_path: Path, monkeypatch):
    """`dvc exp run --temp`/`--queue` run stages in a temporary copy and set DVC_ROOT to the
    project: a relative store is resolved there, not in the copy DVC deletes."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    workspace = tmp_path / ".dvc" / "tmp" / "exps" / "tmpabc"
    workspace.mkdir(parents=True)
    monkeypatch.chdir(workspace)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    assert tracking_uri(PARAMS) == f"sqlite:///{workspace}/mlflow.db"
    assert dvc_experiment() == "workspace"
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.setenv("DVC_EXP_NAME", "sunny-deer")
    assert tracking_uri(PARAMS) == f"sqlite:///{tmp_path}/mlflow.db"
    assert dvc_experiment() == "sunny-deer"


def test_experiment_opens_on_training_runs(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    experiment_id = configure(PARAMS, tmp_path)
    tags = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_experiment(experiment_id).tags
    assert tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND == "custom_model_development"


def test_champion_moves_only_for_a_better_test_score(logged_ppca):
    _, _, model_id, _ = logged_ppca
    client = MlflowClient()
    first = register(f"models:/{model_id}", "ppca", -100.0, {"git_commit": "a"}, KEY)
    assert (first.name, first.alias, first.previous_champion) == ("pml-ops-ppca", "champion", None)
    worse = register(f"models:/{model_id}", "ppca", -101.0, {"git_commit": "b"}, KEY)
    assert (worse.alias, worse.previous_champion) == ("challenger", first.version)
    assert client.get_model_version_by_alias("pml-ops-ppca", "champion").version == first.version
    assert client.get_model_version_by_alias("pml-ops-ppca", "challenger").version == worse.version
    better = register(f"models:/{model_id}", "ppca", -99.5, {"git_commit": "c"}, KEY)
    assert better.alias == "champion"
    champion = client.get_model_version_by_alias("pml-ops-ppca", "champion")
    assert champion.version == better.version
    assert champion.tags["test_score"] == "-99.5" and champion.tags["git_commit"] == "c"
    assert champion.source == f"models:/{model_id}"
    versions = client.search_model_versions("name = 'pml-ops-ppca'")
    assert sorted(int(v.version) for v in versions) == [1, 2, 3]
