"""scripts/install.sh into a fresh virtual environment, the way the images run it (two passes:
dependencies from pyproject.toml alone, then the project, non-editable, no extras), yields an
environment where `pml-ops --help` and the smoke pipeline (scripts/smoke.sh) work.

The slowest test of the suite (a minute or more: every dependency is installed, from pip's cache
when it is warm). It is the one place CI here exercises the images' install logic.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pml_ops.data.mnist import MIRROR_ENV, load_mnist
from tests.conftest import VENV_BIN, run

pytestmark = [pytest.mark.install, pytest.mark.e2e]

# The knobs of the images' install (docker/Dockerfile; tests/containers/test_container_files.py checks it
# sets them). TORCH_INDEX_URL is left as the environment has it: the CPU wheel index
# on GitHub Actions, the local torch wheel here.
IMAGE_KNOBS = {"PML_OPS_EXTRAS": "", "PML_OPS_EDITABLE": "0"}


def without_test_venv(path: str) -> str:
    return os.pathsep.join(entry for entry in path.split(os.pathsep) if Path(entry) != VENV_BIN)


@pytest.mark.timeout(1200)
def test_install_script_builds_a_working_environment_as_in_the_images(temp_clone, mnist_mirror, tmp_path):
    venv = tmp_path / "venv"
    env = dict(os.environ, VENV=str(venv), PATH=without_test_venv(os.environ.get("PATH", "")), **IMAGE_KNOBS)
    for name in ("VIRTUAL_ENV", "PYTHONPATH", "MLFLOW_TRACKING_URI"):
        env.pop(name, None)
    outside = tmp_path / "elsewhere"  # a directory without the project's source
    outside.mkdir()
    find_project = [
        str(venv / "bin" / "python"),
        "-c",
        "import importlib.util as u; print(u.find_spec('pml_ops'))",
    ]

    deps = run(["bash", "scripts/install.sh"], temp_clone, {**env, "PML_OPS_DEPS_ONLY": "1"})
    assert "dependencies ready" in deps.stdout
    run([str(venv / "bin" / "python"), "-c", "import torch, mlflow, dvc, optuna"], outside, env)
    assert run(find_project, outside, env).stdout.strip() == "None"  # only the dependencies

    full = run(["bash", "scripts/install.sh"], temp_clone, env)
    assert "environment ready" in full.stdout
    assert str(venv) in run(find_project, outside, env).stdout  # installed, not a link to the clone
    again = run(["bash", "scripts/install.sh"], temp_clone, env)
    assert again.stdout == ""  # the stamp: nothing to do

    help_text = run([str(venv / "bin" / "pml-ops"), "--help"], outside, env).stdout
    assert "validate" in help_text and "ui" in help_text

    stage_env = {**env, "PATH": f"{venv / 'bin'}{os.pathsep}{env['PATH']}", MIRROR_ENV: str(mnist_mirror)}
    stage_env["PML_OPS_PROGRESS"] = "0"
    # the smoke script with the fresh venv, its first stage only: the whole smoke pipeline is the
    # session pipeline's job (tests/conftest.py `pipeline_run`), which runs the same script
    smoke = run(["bash", "scripts/smoke.sh", "prepare"], temp_clone, stage_env)
    assert "Running stage 'prepare'" in smoke.stdout
    assert load_mnist(temp_clone / "data" / "mnist.npz").x_test.shape == (10000, 28, 28)
    assert (
        "Data and pipelines are up to date."
        in run(["bash", "scripts/smoke.sh", "prepare"], temp_clone, stage_env).stdout
    )
