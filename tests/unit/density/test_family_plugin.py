"""A density family from another package (tests/helpers/plugin_family: factor analysis) found
through a `pml_ops.families` entry point: the registry creates, fits, saves and loads it, its
artifact is checked against the params like any family's, and its note reaches Table 1."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import yaml

from pml_ops.config import EvaluateParams, parse_params, rediscover
from pml_ops.core.errors import ConfigError, DataError
from pml_ops.density import families
from pml_ops.density.data import DensitySplit
from pml_ops.density.evaluation import comparison_rows, evaluate_model
from pml_ops.density.family import Family
from pml_ops.density.interface import FitCallbacks, LatentDensityModel
from pml_ops.density.units import dequantise
from pml_ops.report.density_table import comparison_markdown
from tests.conftest import REPO_ROOT
from tests.helpers.fake_families import PLUGIN_PACKAGE, declare

FA = {"family": "fa", "file": "params.yaml", "section": "fa", "base": "fa"}


@pytest.fixture
def params(tmp_path, monkeypatch):
    """params.yaml with a model `fa` of the plug-in family beside ppca, artifacts under tmp_path."""
    monkeypatch.syspath_prepend(str(PLUGIN_PACKAGE))
    declare(monkeypatch, fa="pml_ops_fa:fa")
    monkeypatch.chdir(tmp_path)
    raw = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    raw["models"] = {"ppca": raw["models"]["ppca"], "fa": FA}
    raw["fa"] = {"latent_dim": 2, "max_iter": 50, "min_noise_variance": 0.01}
    yield parse_params(raw)
    rediscover()


def _split(seed: int = 0) -> DensitySplit:
    rng = np.random.default_rng(seed)
    x, y = rng.integers(0, 256, (70, 28, 28), dtype=np.uint8), rng.integers(0, 3, 70)
    return DensitySplit(x[:40], y[:40], x[40:50], y[40:50], x[50:], y[50:])


def test_the_plugin_family_is_found_and_runs_through_the_registry(params):
    found = families.family("fa")
    assert isinstance(found, Family) and found.suffix == ".npz" and found.preflight is None
    assert list(families.all_families()) == ["vae", "cvae", "ppca", "gmm", "fa"]
    assert families.paths(params, "fa").artifact.as_posix() == "models/fa/fa.npz"
    families.check_models(params)

    model = families.create(params, "fa").fit(_split(), FitCallbacks())
    assert isinstance(model, LatentDensityModel) and model.train_metrics_["em_iterations"] > 0
    model.save(families.paths(params, "fa").artifact)
    loaded = families.load(params, "fa")
    x = _split(1).x_test.reshape(20, -1).astype(np.float32) / 255
    np.testing.assert_array_equal(loaded.log_density(x), model.log_density(x))
    np.testing.assert_array_equal(loaded.encode(x), model.encode(x))
    np.testing.assert_array_equal(loaded.sample(3, seed=2), model.sample(3, seed=2))
    pyfunc_side = families.load_artifact(families.paths(params, "fa").artifact, "fa", "fa", 0)
    np.testing.assert_array_equal(pyfunc_side.log_density(x), model.log_density(x))

    evaluate = EvaluateParams(**{**params.evaluate.model_dump(), "iwae_images": 5, "knn_neighbors": 1})
    split = _split()
    unit = [s.reshape(len(s), -1).astype(np.float32) / 255 for s in (split.x_train, split.x_test)]
    metrics = evaluate_model(
        loaded, unit[0], split.y_train, unit[1], split.y_test, evaluate, 0, dequantise(split.x_test, 0)
    )
    assert metrics["bits_per_dim_estimate"] == "exact" and np.isfinite(metrics["bits_per_dim"])
    assert "test_knn_accuracy" in metrics and "test_score_mc_se" not in metrics
    notes = families.notes(params)
    assert notes == [families.family("ppca").note, found.note]
    table = comparison_markdown(comparison_rows({}, {"fa": metrics}), notes)
    assert "| fa |" in table and found.note in table and "Normalised densities: fa (exact)." in table


def test_an_artifact_saved_with_other_hyperparameters_is_refused(params):
    model = families.create(params, "fa").fit(_split(), FitCallbacks())
    model.save(families.paths(params, "fa").artifact)
    raw = copy.deepcopy(params.model_dump())
    raw["fa"]["latent_dim"] = 3
    with pytest.raises(DataError, match=r"model 'fa': saved with hyperparameters .*'latent_dim': 2"):
        families.load(parse_params(raw), "fa")


def test_an_entry_point_that_is_not_a_family_is_refused(monkeypatch):
    """Enough for params.yaml's validation (a name and a section schema), not for the registry."""
    declare(monkeypatch, wide="tests.helpers.fake_families:WIDE")
    try:
        with pytest.raises(ConfigError, match=r"density family 'wide' from entry point .*: not a pml_ops"):
            families.all_families()
    finally:
        rediscover()
