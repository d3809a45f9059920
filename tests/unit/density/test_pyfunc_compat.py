"""A density pyfunc logged and registered by an earlier layout of the package still loads and
predicts the same numbers: the package as it was at OLD_LAYOUT (before pml_ops was arranged in
layers) fits, logs and registers a PPCA in one process; the current package loads the champion
in another."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO_ROOT

# The last commit with the flat layout: pml_ops.density.ppca, pml_ops.model_registry and
# pml_ops.tracking as a module.
OLD_LAYOUT = "5d103d4"

LOG_WITH_OLD_LAYOUT = """
import sys
from pathlib import Path

import mlflow
import numpy as np

import pml_ops
from pml_ops.config import TrackingParams
from pml_ops.density.ppca import PPCA
from pml_ops.density.pyfunc import log_and_record
from pml_ops.model_registry import register
from pml_ops.tracking import configure

old, store = Path(sys.argv[1]), Path(sys.argv[2])
assert Path(pml_ops.__file__).resolve().is_relative_to(old.resolve()), pml_ops.__file__
configure(TrackingParams(uri="sqlite:///mlflow.db", experiment="old", artifact_root="mlartifacts"), store)
images = np.random.default_rng(0).random((40, 784)).astype(np.float32)
model = PPCA(2).fit_pixels(images)
artifact = store / "models" / "ppca" / "ppca.npz"
model.save(artifact)
with mlflow.start_run():
    model_id = log_and_record(model, artifact, images[:2], 0, {"model": "ppca"})
registration = register(f"models:/{model_id}", "ppca", -1.0, {})
assert registration.alias == "champion", registration
np.save(store / "images.npy", images)
predicted = mlflow.pyfunc.load_model(f"models:/{model_id}").predict(images)
np.save(store / "old_log_density.npy", predicted["log_density"].to_numpy())
"""

LOAD_WITH_CURRENT_LAYOUT = """
import sys
from pathlib import Path

import pml_ops.density.pyfunc  # the current package, imported before the model is loaded

import mlflow
import numpy as np

repo, store = Path(sys.argv[1]), Path(sys.argv[2])
assert Path(pml_ops.__file__).resolve().is_relative_to(repo.resolve()), pml_ops.__file__
mlflow.set_tracking_uri(f"sqlite:///{store}/mlflow.db")
loaded = mlflow.pyfunc.load_model("models:/pml-ops-ppca@champion")
predicted = loaded.predict(np.load(store / "images.npy"))
np.save(store / "new_log_density.npy", predicted["log_density"].to_numpy())
"""


def _old_package(destination: Path) -> Path:
    """pml_ops as it was at OLD_LAYOUT, extracted from this clone's history into `destination`."""
    present = subprocess.run(
        ["git", "cat-file", "-e", f"{OLD_LAYOUT}^{{commit}}"], cwd=REPO_ROOT, capture_output=True
    )
    if present.returncode != 0:
        pytest.skip(
            f"commit {OLD_LAYOUT} (the package before its layers) is not in this clone's history "
            "(a shallow clone?): nothing to log the old model with"
        )
    archive = destination / "old.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "archive", OLD_LAYOUT, "pml_ops"], cwd=REPO_ROOT, stdout=out, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(destination / "old", filter="data")
    return destination / "old"


def _python(script: str, pythonpath: Path, store: Path, *args: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(pythonpath), "PML_OPS_PROGRESS": "0"}
    env.pop("MLFLOW_TRACKING_URI", None)
    result = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)], cwd=store, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_a_pyfunc_logged_with_the_old_layout_loads_and_predicts_the_same(tmp_path: Path):
    old = _old_package(tmp_path)
    store = tmp_path / "store"
    store.mkdir()
    _python(LOG_WITH_OLD_LAYOUT, old, store, old, store)
    _python(LOAD_WITH_CURRENT_LAYOUT, REPO_ROOT, store, REPO_ROOT, store)
    old_log_density = np.load(store / "old_log_density.npy")
    new_log_density = np.load(store / "new_log_density.npy")
    assert old_log_density.shape == (40,) and np.isfinite(old_log_density).all()
    np.testing.assert_array_equal(new_log_density, old_log_density)
