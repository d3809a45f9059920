"""The DVC side of tracking: the `artifacts:` block (one model per entry of the `models` list),
`dvc artifacts get`, metrics that are numbers only, the ELBO curves drawn once beside the image
plots, and a queued `dvc exp` whose MLflow runs land in the project's own store."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from pml_ops.config import load_params
from pml_ops.density import families
from tests.conftest import REPO_ROOT, copy_clone, run


def test_artifacts_block_declares_the_data_set_and_every_model_of_the_models_list():
    dvc = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())
    params = load_params(REPO_ROOT / "params.yaml")
    artifacts = dvc["artifacts"]
    assert artifacts["mnist"] == {**artifacts["mnist"], "path": params.data.path, "type": "dataset"}
    models = {name: a for name, a in artifacts.items() if a["type"] == "model"}
    assert sorted(models) == sorted(name.replace("_", "-") for name in families.model_names(params))
    for name in families.model_names(params):
        declared = models[name.replace("_", "-")]
        assert declared["path"] == families.paths(params, name).artifact.as_posix()
        assert declared["desc"] and declared["labels"]


def test_the_elbo_plot_covers_every_model_trained_by_epochs():
    dvc = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())
    params = load_params(REPO_ROOT / "params.yaml")
    by_epoch = [name for name in families.model_names(params) if families.family_of(params, name).by_epoch]
    (elbo,) = [plot["validation_elbo"] for plot in dvc["plots"] if isinstance(plot, dict)]
    assert elbo["y"] == {f"metrics/train/{name}_history.json": "val_elbo" for name in by_epoch}
    train = dvc["stages"]["train"]["do"]
    assert "plots" not in train  # the history files are outs, drawn once by the plot above
    assert dvc["stages"]["evaluate"]["do"]["plots"] == ["${density.figures_dir}/${key}"]


def _numbers_only(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@pytest.mark.e2e
def test_metrics_show_holds_only_numbers_one_row_per_stage(pipeline_run):
    clone, _, env = pipeline_run
    shown = run(["dvc", "metrics", "show", "--json"], clone, env)
    assert shown.stderr.strip() == ""  # no warning (e.g. for a model not tuned yet)
    files = json.loads(shown.stdout)[""]["data"]
    models = list(yaml.safe_load((clone / "params.yaml").read_text())["models"])
    expected = {"metrics/prepare.json", "metrics/gp.json", "metrics/bayesopt.json", "metrics/report.json"}
    expected |= {"metrics/density_comparison.json"}
    expected |= {f"metrics/{kind}/{name}.json" for kind in ("train", "evaluate") for name in models}
    assert set(files) == expected
    for path, entry in files.items():
        not_numbers = {key: value for key, value in entry["data"].items() if not _numbers_only(value)}
        assert not not_numbers, f"{path}: {not_numbers}"
    assert files["metrics/bayesopt.json"]["data"]["success"] in (0, 1)
    info = json.loads((clone / "metrics" / "evaluate" / "vae_info.json").read_text())
    assert info["objective"] == "ELBO" and info["normalised"] is False
    prepared = json.loads((clone / "metrics" / "prepare_info.json").read_text())
    assert prepared["dataset"] == "mnist" and sum(prepared["test_label_counts"]) == 10000


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
    shown = run(["dvc", "plots", "show", "--json"], copy, env)
    assert "failed to load" not in shown.stderr, shown.stderr
    plots = json.loads(shown.stdout)["data"]
    pngs = sorted(p.relative_to(copy).as_posix() for p in (copy / "figures").rglob("*.png"))
    assert sorted(key for key in plots if key.endswith(".png")) == pngs  # each figure once
    assert "figures/vae/latent.png" in pngs and any(p.startswith("figures/gp/") for p in pngs)
    curves = [key for key, items in plots.items() if any(i["type"] == "vega" for i in items)]
    assert curves == ["validation_elbo"]  # the ELBO curves once, in one plot
    values = plots["validation_elbo"][0]["content"]["data"]["values"]
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    drawn = {
        f"{name}_history.json"
        for name, entry in params["models"].items()
        if entry["family"] in ("vae", "cvae")
    }
    assert {v["filename"] for v in values} == drawn


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
