"""`dvc repro prepare` in a temporary clone of the repository, offline."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from pml_ops.data.mnist import MIRROR_ENV, load_mnist
from tests.conftest import run

pytestmark = pytest.mark.e2e


def test_dvc_repro_prepare_builds_then_is_up_to_date(temp_clone, stage_env):
    first = run(["dvc", "repro", "prepare"], temp_clone, stage_env)
    assert "Running stage 'prepare'" in first.stdout
    data = load_mnist(temp_clone / "data" / "mnist.npz")
    assert data.x_train.shape == (60000, 28, 28) and data.x_test.shape == (10000, 28, 28)
    assert np.bincount(data.y_test).tolist()[:3] == [980, 1135, 1032]

    second = run(["dvc", "repro", "prepare"], temp_clone, stage_env)
    assert "Running stage" not in second.stdout
    assert "didn't change, skipping" in second.stdout
    status = run(["dvc", "status", "prepare"], temp_clone, stage_env)
    assert "Data and pipelines are up to date." in status.stdout

    # The artifact is cached by DVC and can be pushed to the default local remote.
    push = run(["dvc", "push"], temp_clone, stage_env)
    assert "pushed" in push.stdout
    assert any((temp_clone / ".dvc-storage").rglob("*"))


def test_prepare_with_no_reachable_mirror_fails_cleanly(temp_clone, stage_env, tmp_path):
    params = yaml.safe_load((temp_clone / "params.yaml").read_text())
    params["data"]["mirrors"]["mnist"] = [str(tmp_path / "nowhere")]
    params["data"]["retries"] = 0
    (temp_clone / "params.yaml").write_text(yaml.safe_dump(params))
    env = dict(stage_env)
    env.pop(MIRROR_ENV)
    result = run(["python", "-m", "pipelines.prepare"], temp_clone, env, check=False)
    assert result.returncode == 2
    assert "pml-ops: error: could not obtain a valid copy of train-images-idx3-ubyte.gz" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (temp_clone / "data" / "mnist.npz").exists()


def test_stage_rejects_bad_params_before_work(temp_clone, stage_env):
    text = (temp_clone / "params.yaml").read_text().replace("retries: 2", "retries: many")
    (temp_clone / "params.yaml").write_text(text)
    result = run(["python", "-m", "pipelines.prepare"], temp_clone, stage_env, check=False)
    assert result.returncode == 2
    assert "'data.retries': Input should be a valid integer" in result.stderr
    assert not (temp_clone / "data" / "mnist.npz").exists()
