"""The tune stages live in tuning/dvc.yaml: the default `dvc repro` never runs them, and it
trains and evaluates `cvae_tuned` from the committed best-params file."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.conftest import run

pytestmark = pytest.mark.e2e


def test_default_repro_skips_tuning_which_runs_on_request(temp_clone, stage_env):
    # `dvc repro` runs ./dvc.yaml's stages and their ancestors: no tune stage among either.
    default = run(["dvc", "stage", "list"], temp_clone, stage_env).stdout
    assert "train@cvae_tuned" in default and "tune" not in default.replace("cvae_tuned", "")
    ancestors = run(["dvc", "dag", "compare_density"], temp_clone, stage_env).stdout
    assert "train@cvae_tuned" in ancestors and "evaluate@cvae_tuned" in ancestors
    assert "tune@" not in ancestors

    (temp_clone / "data" / "mnist.npz").write_bytes(b"placeholder: a dry run only hashes deps")
    explicit = run(["dvc", "repro", "--dry", "tuning/dvc.yaml:tune@cvae"], temp_clone, stage_env)
    assert "Running stage 'tuning/dvc.yaml:tune@cvae'" in explicit.stdout
    assert "> python -m pipelines.tune --model cvae" in explicit.stdout
    assert "tune@vae" not in explicit.stdout
    assert "train@cvae_tuned" not in explicit.stdout


def test_cvae_tuned_trains_from_the_best_params_file(temp_clone, stage_env):
    params = yaml.safe_load((temp_clone / "params.yaml").read_text())
    params["density"]["subset"] = {"train": 300, "test": 50}
    params["cvae"]["training"]["epochs"] = 1
    params["evaluate"].update(iwae_samples=2, knn_neighbors=1, grid_size=2, n_reconstructions=2)
    (temp_clone / "params.yaml").write_text(yaml.safe_dump(params))
    tuned = {
        "cvae_tuned": {
            "architecture": {
                "latent_dim": 2,
                "channels": [8],
                "kernel_size": 5,
                "stride": 2,
                "padding": 2,
                "output_padding": 1,
                "hidden": [32],
            },
            "lr": 0.002,
            "source": {"study": "test", "trial": 0, "val_elbo": -200.0},
        }
    }
    (temp_clone / "params_tuned.yaml").write_text(yaml.safe_dump(tuned))
    run(["dvc", "repro", "evaluate@cvae_tuned"], temp_clone, stage_env)
    trained = json.loads((temp_clone / "metrics" / "train" / "cvae_tuned.json").read_text())
    evaluated = json.loads((temp_clone / "metrics" / "evaluate" / "cvae_tuned.json").read_text())
    assert trained["epochs"] == 1 and trained["train_images"] == 285
    info = json.loads((temp_clone / "metrics" / "evaluate" / "cvae_tuned_info.json").read_text())
    assert info["model"] == "cvae_tuned" and evaluated["test_score"] < 0
    assert (temp_clone / "figures" / "cvae_tuned" / "latent.png").is_file()
