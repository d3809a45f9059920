"""Shared fixtures: the offline MNIST mirror, synthetic IDX files, temporary repo clones, the
PostgreSQL and S3 servers, the session pipeline and a logged density pyfunc."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from pml_ops.config import profiles
from pml_ops.data.idx import sha256_hex
from pml_ops.data.mnist import MIRROR_ENV, IdxFile
from tests.helpers.idx_files import encode_idx
from tests.helpers.postgres import fresh_database

if TYPE_CHECKING:
    from tests.helpers.s3_helpers import S3Server

REPO_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
SMOKE_PROFILE = "profiles/smoke.yaml"


@pytest.fixture(scope="session")
def mnist_mirror() -> Path:
    """The offline MNIST copy: $PML_OPS_MNIST_MIRROR, else ../shared/mnist beside the checkout.

    In CI (CI=true) a missing mirror is a failure, never a skip.
    """
    candidate = Path(os.environ.get(MIRROR_ENV) or REPO_ROOT.parent / "shared" / "mnist")
    if not (candidate / "train-images-idx3-ubyte.gz").is_file():
        message = f"offline MNIST mirror not found at {candidate} (set {MIRROR_ENV})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return candidate.resolve()


def synthetic_files(n_train: int = 6, n_test: int = 4, side: int = 5, seed: int = 0):
    """Small random MNIST-shaped IDX files: returns ({key: IdxFile}, {filename: gz bytes})."""
    rng = np.random.default_rng(seed)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, side, side), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n_test, side, side), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    specs, blobs = {}, {}
    for key, array in arrays.items():
        raw = encode_idx(array)
        spec = IdxFile(f"synthetic-{key}", sha256_hex(raw), array.shape)
        specs[key] = spec
        blobs[spec.filename] = gzip.compress(raw, mtime=0)
    return specs, blobs, arrays


@pytest.fixture
def synthetic_mirror(tmp_path: Path):
    """A directory mirror holding valid synthetic files."""
    specs, blobs, arrays = synthetic_files()
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name, blob in blobs.items():
        (mirror / name).write_bytes(blob)
    return mirror, specs, arrays


@pytest.fixture
def logged_ppca(tmp_path: Path, monkeypatch):
    """A PPCA fitted on random images, logged as the density pyfunc in a run of a fresh store
    (experiment "unit"); returns (store directory, model, logged model id, images)."""
    import mlflow

    from pml_ops.config import TrackingParams
    from pml_ops.density.models.ppca import PPCA
    from pml_ops.density.pyfunc import log_and_record
    from pml_ops.tracking.store import configure

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    configure(
        TrackingParams(uri="sqlite:///mlflow.db", experiment="unit", artifact_root="mlartifacts"), tmp_path
    )
    images = np.random.default_rng(0).random((40, 784)).astype(np.float32)
    model = PPCA(2).fit_pixels(images)
    artifact = tmp_path / "models" / "ppca" / "ppca.npz"
    model.save(artifact)
    with mlflow.start_run():
        model_id = log_and_record(model, artifact, images[:2], 0, {"model": "ppca"})
    return tmp_path, model, model_id, images


def project_files() -> list[str]:
    """Tracked and untracked-but-not-ignored files: the working tree as a commit would hold it."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [name for name in out.split("\0") if name and (REPO_ROOT / name).exists()]


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, check: bool = True):
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


@pytest.fixture
def temp_clone(tmp_path: Path) -> Path:
    """A fresh git repository holding the current working tree (uncommitted changes included)."""
    clone = tmp_path / "clone"
    for name in project_files():
        target = clone / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, target)
    run(["git", "init", "-q"], clone)
    run(["git", "add", "-A"], clone)
    run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "snapshot"],
        clone,
    )
    return clone


@pytest.fixture
def stage_env(mnist_mirror: Path, tmp_path: Path) -> dict[str, str]:
    """Environment for running DVC stages: this venv first on PATH, offline mirror set."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env[MIRROR_ENV] = str(mnist_mirror)
    env.pop("MLFLOW_TRACKING_URI", None)
    env["PML_OPS_PROGRESS"] = "0"
    return env


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the local PostgreSQL server, dropped afterwards (tests/helpers/postgres.py)."""
    with fresh_database() as url:
        yield url


@pytest.fixture(scope="session")
def s3(tmp_path_factory) -> Iterator[S3Server]:
    """One moto S3 server for the sharing tests (each test keeps to its own key prefix)."""
    from tests.helpers.s3_helpers import start_s3

    yield from start_s3(tmp_path_factory.mktemp("s3"))


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory, mnist_mirror: Path):
    """The whole pipeline (`dvc repro`), run once per test session at the smoke profile
    (profiles/smoke.yaml, the settings CI's smoke run uses) in a fresh clone. Tests that change
    the clone must work on `copy_clone(...)` instead."""
    clone = tmp_path_factory.mktemp("pipeline") / "clone"
    for name in project_files():
        target = clone / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, target)
    profiles.main(["apply", str(clone / SMOKE_PROFILE), str(clone / "params.yaml")])
    run(["git", "init", "-q"], clone)
    run(["git", "add", "-A"], clone)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "reduced"], clone)
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env[MIRROR_ENV] = str(mnist_mirror)
    env.pop("MLFLOW_TRACKING_URI", None)
    env["PML_OPS_PROGRESS"] = "0"
    result = run(["bash", "scripts/smoke.sh"], clone, env)  # re-applying the profile changes nothing
    return clone, result.stdout, env


def copy_clone(clone: Path, destination: Path) -> Path:
    """A private copy of a pipeline clone (workspace, git history, DVC cache, MLflow store)."""
    shutil.copytree(clone, destination, symlinks=True)
    return destination
