"""Trained models are stored and loaded without running pickled code."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from pml_ops.config import load_params
from pml_ops.density.store import load_model, model_path, save_model
from pml_ops.errors import DataError
from tests.conftest import REPO_ROOT


class _Payload:
    """Unpickling this would create a marker file: a stand-in for arbitrary code execution."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture
def params(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return load_params(REPO_ROOT / "params.yaml")


def test_vae_weights_round_trip(params):
    from pml_ops.density.architectures import build_model

    model = build_model(params.vae.architecture, seed=3)
    path = save_model(params, "vae", model)
    assert torch.load(path, weights_only=True).keys() == model.state_dict().keys()
    loaded = load_model(params, "vae")
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.model.state_dict()[key], value)


def test_pickled_code_in_a_model_file_is_refused_not_run(params, tmp_path):
    marker = tmp_path / "pwned"
    path = model_path(params, "cvae")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump({"weights": _Payload(marker)}, fh)
    with pytest.raises(DataError, match="not a loadable weights file"):
        load_model(params, "cvae")
    assert not marker.exists()
