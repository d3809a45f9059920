"""The tune stages live in tuning/dvc.yaml: the default `dvc repro` never runs them."""

from __future__ import annotations

import pytest

from tests.conftest import run

pytestmark = pytest.mark.e2e


def test_default_repro_skips_tuning_which_runs_on_request(temp_clone, stage_env):
    default = run(["dvc", "repro", "--dry"], temp_clone, stage_env)
    assert "Running stage 'prepare'" in default.stdout
    assert "tune" not in default.stdout

    (temp_clone / "data" / "mnist.npz").write_bytes(b"placeholder: a dry run only hashes deps")
    explicit = run(["dvc", "repro", "--dry", "tuning/dvc.yaml:tune@cvae"], temp_clone, stage_env)
    assert "Running stage 'tuning/dvc.yaml:tune@cvae'" in explicit.stdout
    assert "> python -m pipelines.tune --model cvae" in explicit.stdout
    assert "tune@vae" not in explicit.stdout
