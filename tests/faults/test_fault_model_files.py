"""Faults in model files and architectures: a corrupt, truncated, missing or mismatched model
file, and an architecture that cannot be built, are refused with a message naming the file or
key and the stage to rerun (pml_ops.density.families does the checking)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pml_ops.config import load_params, parse_params
from pml_ops.core.errors import ConfigError, DataError
from pml_ops.density import families
from tests.conftest import REPO_ROOT
from tests.unit.density.test_density_registry import _fitted, _raw


@pytest.fixture
def params(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(REPO_ROOT / "params_tuned.yaml", tmp_path)
    return load_params(REPO_ROOT / "params.yaml")


def test_a_file_from_another_architecture_is_refused(params):
    path = families.paths(params, "cvae").artifact
    _fitted(params, "cvae").save(path)
    raw = _raw()
    raw["cvae"]["architecture"]["channels"] = [8, 16]
    with pytest.raises(DataError, match=rf"{path}: model 'cvae': saved with hyperparameters") as error:
        families.load(parse_params(raw), "cvae")
    assert "'channels': [16, 32]" in str(error.value) and "'channels': [8, 16]" in str(error.value)
    assert str(error.value).endswith("rerun `dvc repro train@cvae`")
    _fitted(params, "vae").save(path)  # a VAE's file where the CVAE's should be
    with pytest.raises(DataError, match=r"holds a 'vae' model, not 'cvae'; rerun `dvc repro train@cvae`"):
        families.load(params, "cvae")


@pytest.mark.parametrize("name", ["cvae", "gmm"])
def test_corrupt_truncated_or_missing_files_are_refused(params, name):
    path = families.paths(params, name).artifact
    _fitted(params, name).save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match=rf"{path}: model '{name}' is corrupt or truncated .*train@{name}`"):
        families.load(params, name)
    path.unlink()
    with pytest.raises(DataError, match=rf"{path}: trained model '{name}' not found; rerun `dvc repro"):
        families.load(params, name)


def test_unbuildable_architecture_is_refused_by_validate_and_by_the_stage(tmp_path):
    raw = _raw()
    raw["cvae"]["architecture"]["channels"] = [16, 32, 64]  # 28-14-7-4, decoded back to 32, not 28
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    shutil.copy(REPO_ROOT / "params_tuned.yaml", tmp_path)
    bin_dir = Path(sys.executable).parent
    env = {"PATH": str(bin_dir), "PYTHONPATH": str(REPO_ROOT), "HOME": str(tmp_path)}
    for cmd in (
        [str(bin_dir / "pml-ops"), "validate"],
        [sys.executable, "-m", "pipelines.train_density", "cvae"],
    ):
        result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=env)
        assert result.returncode == 2, result.stderr
        assert "models.cvae: params.yaml: cvae.architecture: (kernel_size=3, stride=2," in result.stderr
        assert "the decoder maps 4x4 back through [4, 8, 16, 32], not to 28x28" in result.stderr
    assert not (tmp_path / "mlflow.db").exists()  # refused before any MLflow run


def test_unbuildable_tuned_architecture_names_the_tuned_file(params, tmp_path):
    tuned = yaml.safe_load((tmp_path / "params_tuned.yaml").read_text())
    tuned["cvae_tuned"]["architecture"]["stride"] = 1  # output_padding 1 needs stride >= 2
    (tmp_path / "params_tuned.yaml").write_text(yaml.safe_dump(tuned))
    with pytest.raises(
        ConfigError,
        match=r"^models.cvae_tuned: params_tuned.yaml: cvae_tuned.architecture: \(kernel_size=7, stride=1, "
        r"padding=3, output_padding=1\): output_padding must be smaller than stride$",
    ):
        families.check_models(params)
