"""The reduced pipeline on Fashion-MNIST: `data.dataset: fashion-mnist` from Debian's package."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from tests.conftest import copy_clone, run

pytestmark = pytest.mark.e2e

FASHION = Path("/usr/share/datasets/fashion-mnist")


def test_density_pipeline_on_fashion_mnist(pipeline_run, tmp_path):
    if not (FASHION / "train-images-idx3-ubyte.gz").is_file():
        message = f"{FASHION}: install Debian's dataset-fashion-mnist"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    clone = copy_clone(pipeline_run[0], tmp_path / "fashion")
    env = {**pipeline_run[2], "PML_OPS_FASHION_MNIST_MIRROR": str(FASHION)}
    params = yaml.safe_load((clone / "params.yaml").read_text())
    params["data"]["dataset"] = "fashion-mnist"
    params["models"] = {name: params["models"][name] for name in ("vae", "ppca", "gmm")}
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = run(["dvc", "repro", "compare_density", "report"], clone, env).stdout
    assert "Running stage 'prepare'" in out and "Running stage 'gp'" not in out  # the GP is unchanged
    prepare = json.loads((clone / "metrics" / "prepare_info.json").read_text())
    assert prepare["dataset"] == "fashion-mnist" and prepare["class_names"][0] == "T-shirt/top"
    table = (clone / "reports" / "density_comparison.md").read_text()
    assert table.startswith("# Density models on Fashion-MNIST") and "| ppca |" in table
    report = (clone / "reports" / "report.md").read_text()
    assert "Density models on Fashion-MNIST" in report and "Ankle boot" in report
    ppca = json.loads((clone / "metrics" / "evaluate" / "ppca.json").read_text())
    assert ppca["bits_per_dim"] > 0
