"""The DVC side of tracking: the `artifacts:` block (one model per entry of the `models` list),
`dvc artifacts get`, image plots, and a queued `dvc exp` whose MLflow runs land in the project's
own store."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.conftest import REPO_ROOT, copy_clone, run


def test_artifacts_block_declares_the_data_set_and_every_model_of_the_models_list():
    dvc = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    artifacts = dvc["artifacts"]
    assert artifacts["mnist"] == {**artifacts["mnist"], "path": params["data"]["path"], "type": "dataset"}
    models = {name: a for name, a in artifacts.items() if a["type"] == "model"}
    assert sorted(models) == sorted(name.replace("_", "-") for name in params["models"])
    suffix = {"vae": ".pt", "cvae": ".pt", "ppca": ".npz", "gmm": ".npz"}
    for name, entry in params["models"].items():
        declared = models[name.replace("_", "-")]
        assert declared["path"] == f"models/{name}/{name}{suffix[entry['family']]}"
        assert declared["desc"] and declared["labels"]


@pytest.mark.e2e
def test_artifacts_get_and_image_plots(pipeline_run, tmp_path):
    clone, _, env = pipeline_run
    copy = copy_clone(clone, tmp_path / "copy")
    run(["git", "add", "-A"], copy)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "results"], copy)
    # A version is a GTO tag on the commit (what `gto register ppca` or DVC Studio writes).
    tag = ["tag", "-a", "ppca@v0.0.1", "-m", "Registering artifact ppca version v0.0.1"]
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *tag], copy)
    got = run(["dvc", "artifacts", "get", str(copy), "ppca", "-o", str(tmp_path / "ppca.npz")], tmp_path, env)
    assert (tmp_path / "ppca.npz").read_bytes() == (clone / "models/ppca/ppca.npz").read_bytes(), got.stdout
    shown = run(["dvc", "plots", "show", "--json"], copy, env).stdout
    assert "figures/vae/latent.png" in shown and "figures/gp" in shown


@pytest.mark.e2e
def test_a_queued_experiment_logs_into_the_projects_store(pipeline_run, tmp_path):
    """`dvc exp run --queue` runs in a temporary workspace DVC deletes; its runs must be in the
    project's mlflow.db afterwards, tagged with the experiment's name."""
    clone, _, env = pipeline_run
    copy = copy_clone(clone, tmp_path / "copy")
    run(["git", "add", "-A"], copy)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "results"], copy)
    run(
        ["dvc", "exp", "run", "--queue", "--name", "queued-ppca", "-S", "ppca.latent_dim=3", "train@ppca"],
        copy,
        env,
    )
    run(["dvc", "queue", "start"], copy, env)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        status = run(["dvc", "queue", "status"], copy, env).stdout
        if "Success" in status or "Failed" in status:
            break
        time.sleep(3)
    logs = run(["dvc", "queue", "logs", "queued-ppca"], copy, env, check=False).stdout
    assert "Success" in status, f"{status}\n{logs}"
    run(["dvc", "queue", "stop"], copy, env, check=False)
    assert not list(Path(copy / ".dvc" / "tmp" / "exps").glob("tmp*/mlflow.db"))
    client = MlflowClient(f"sqlite:///{copy / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("pml-ops")
    found = client.search_runs([experiment.experiment_id], "tags.dvc_experiment = 'queued-ppca'")
    assert [r.info.run_name for r in found] == ["train ppca"], logs
    assert found[0].data.params["ppca.latent_dim"] == "3"
