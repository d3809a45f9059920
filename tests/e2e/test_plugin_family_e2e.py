"""A density family from another package, end to end: tests/helpers/plugin_family (factor
analysis, declared in the `pml_ops.families` entry-point group) is installed into a temporary
location, and a clone whose params.yaml lists a model of it runs `dvc repro` at the smoke profile:
train, evaluate (registered in MLflow's registry), compare, report, then the registered pyfunc
loads and predicts in a fresh process. No file of pml_ops, pipelines/ or dvc.yaml changes
(docs/extending.md is the recipe)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from pml_ops.config import profiles
from tests.conftest import SMOKE_PROFILE, run
from tests.helpers.fake_families import PLUGIN_PACKAGE

pytestmark = pytest.mark.e2e

FA_ENTRY = {"family": "fa", "file": "params.yaml", "section": "fa", "base": "fa"}
FA_SECTION = {"latent_dim": 2, "max_iter": 100, "min_noise_variance": 0.01}

PREDICT = """
import json, sys
import mlflow, numpy as np
from pml_ops.data.mnist import load_mnist
mlflow.set_tracking_uri("sqlite:///mlflow.db")
model = mlflow.pyfunc.load_model("models:/pml-ops-fa@smoke")
x = load_mnist("data/mnist.npz").x_test[:100].reshape(100, -1).astype(np.float32) / 255
out = model.predict(x)
needs = open(mlflow.pyfunc.get_model_dependencies("models:/pml-ops-fa@smoke")).read().split()
print(json.dumps({"mean": float(out.log_density.mean()), "latent": len(out.latent_mean[0]), "needs": needs}))
"""


def install(package: Path, tmp_path: Path) -> Path:
    """`pip install --target`: the package with its entry point, outside this environment."""
    source, site = tmp_path / "plugin-source", tmp_path / "plugin-site"
    shutil.copytree(package, source)  # the build writes beside the sources: not into the checkout
    offline = ["--quiet", "--no-deps", "--no-build-isolation", "--no-index"]
    run([sys.executable, "-m", "pip", "install", *offline, "--target", str(site), str(source)], tmp_path)
    return site


def test_a_family_from_an_installed_package_runs_through_the_pipeline(temp_clone, stage_env, tmp_path):
    clone, site = temp_clone, install(PLUGIN_PACKAGE, tmp_path)
    env = {**stage_env, "PYTHONPATH": str(site)}
    params_file = clone / "params.yaml"
    profiles.main(["apply", str(clone / SMOKE_PROFILE), str(params_file)])
    raw = yaml.safe_load(params_file.read_text())
    raw["models"] = {"ppca": raw["models"]["ppca"], "fa": FA_ENTRY}
    raw["fa"] = FA_SECTION
    params_file.write_text(yaml.safe_dump(raw, sort_keys=False))

    result = run(["dvc", "repro"], clone, env)
    for stage in ("train@fa", "evaluate@fa", "compare_density", "report"):
        assert f"Running stage '{stage}'" in result.stdout
    changed = run(["git", "status", "--porcelain", "--untracked-files=no"], clone).stdout.split()
    assert not [path for path in changed if path.startswith(("pml_ops/", "pipelines/", "dvc.yaml"))]

    metrics = json.loads((clone / "metrics" / "evaluate" / "fa.json").read_text())
    info = json.loads((clone / "metrics" / "evaluate" / "fa_info.json").read_text())
    assert info["objective"] == "exact log-likelihood" and info["bits_per_dim_estimate"] == "exact"
    assert metrics["bits_per_dim"] > 0 and metrics["test_images"] == 100 and "test_knn_accuracy" in metrics
    assert (clone / "models" / "fa" / "fa.npz").is_file()
    assert sorted(p.name for p in (clone / "figures" / "fa").iterdir()) == [
        "grid.png", "latent.png", "reconstructions.png"
    ]  # fmt: skip
    table = (clone / "reports" / "density_comparison.md").read_text()
    assert "| fa |" in table and "| ppca |" in table and "FA: the exact log-likelihood" in table
    assert "| FA |" in (clone / "reports" / "report.md").read_text()

    client = MlflowClient(f"sqlite:///{clone / 'mlflow.db'}")
    # a smoke-profile run registers under the `smoke` alias, never as champion
    version = client.get_model_version_by_alias("pml-ops-fa", "smoke")
    assert str(version.version) == "1" and float(version.tags["test_score"]) == metrics["test_score"]

    predicted = subprocess.run(
        [sys.executable, "-c", PREDICT], cwd=clone, env=env, capture_output=True, text=True, check=False
    )
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    served = json.loads(predicted.stdout.strip().splitlines()[-1])
    assert served["mean"] == pytest.approx(metrics["test_score"], rel=1e-9) and served["latent"] == 2
    assert "pml-ops-fa==0.1.0" in served["needs"]  # the logged model names the family's package
