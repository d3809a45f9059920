"""The density-model registry: every listed model resolves, artifacts round-trip and describe
themselves, and wrong, corrupt or unbuildable models are refused with a message naming the fix."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from pml_ops.config import load_params, parse_params
from pml_ops.core.errors import ConfigError, DataError
from pml_ops.density import families
from pml_ops.density.family import Family
from pml_ops.density.models import gmm, ppca, vae
from pml_ops.density.models.vae import VaeModel
from tests.conftest import REPO_ROOT


class _Payload:
    """Unpickling this would create a marker file: a stand-in for arbitrary code execution."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _raw() -> dict:
    return yaml.safe_load((REPO_ROOT / "params.yaml").read_text())


@pytest.fixture
def params(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(REPO_ROOT / "params_tuned.yaml", tmp_path)
    return load_params(REPO_ROOT / "params.yaml")


def _fitted(params, name: str):
    """The model `name` with untrained (VAE) or closed-form (PPCA, GMM) state, no MNIST needed."""
    model = families.create(params, name)
    if isinstance(model, VaeModel):
        model.module_ = model.build()
    else:
        model.fit_pixels(np.random.default_rng(0).uniform(0, 1, (60, 784)))
    return model


def test_each_family_module_declares_its_families():
    declared = {"vae": vae.vae, "cvae": vae.cvae, "ppca": ppca.ppca, "gmm": gmm.gmm}
    assert {name: families.family(name) for name in declared} == declared
    assert list(families.all_families())[:4] == list(declared)  # pml-ops's own first
    for name, family in declared.items():
        assert isinstance(family, Family) and family.name == name and family.section.model_fields
        assert family.suffix == (".pt" if family.by_epoch else ".npz") and family.note
        assert (family.preflight is not None) == family.tuned == family.by_epoch == (name in ("vae", "cvae"))
    with pytest.raises(
        ConfigError, match=r"no density family 'flow'; the families found are vae, cvae, ppca, gmm"
    ):
        families.family("flow")


def test_every_listed_model_resolves_and_builds(params):
    assert families.model_names(params) == list(_raw()["models"])
    families.check_models(params)
    for name in families.model_names(params):
        model, found = families.create(params, name), families.family_of(params, name)
        assert model.family == found.name and families.paths(params, name).artifact.suffix == found.suffix
    for family in ("vae", "cvae"):  # the study's model but for the decoder
        twin = families.create(params, f"{family}_cb")
        study = getattr(params, family)
        assert (
            twin.architecture.decoder == "continuous_bernoulli" and study.architecture.decoder == "bernoulli"
        )
        assert twin.architecture == study.architecture.model_copy(update={"decoder": "continuous_bernoulli"})
        assert twin.training == study.training and twin.family == family
    tuned = families.create(params, "cvae_tuned")
    assert tuned.family == "cvae" and tuned.architecture.channels == [8]  # from params_tuned.yaml
    assert tuned.training.epochs == params.cvae.training.epochs
    assert tuned.training.lr != params.cvae.training.lr
    assert families.paths(params, "gmm").artifact == Path("models/gmm/gmm.npz")


def test_unknown_model_is_a_clear_error(params):
    with pytest.raises(
        ConfigError, match=r"no density model 'flow'; params.yaml lists vae, cvae, cvae_tuned"
    ):
        families.create(params, "flow")


@pytest.mark.parametrize("name", ["vae", "cvae_tuned", "vae_cb", "ppca", "gmm"])
def test_artifact_round_trip(params, name):
    model = _fitted(params, name)
    model.save(families.paths(params, name).artifact)
    loaded = families.load(params, name)
    x = np.random.default_rng(1).uniform(0, 1, (4, 784)).astype(np.float32)
    np.testing.assert_array_equal(loaded.log_density(x), model.log_density(x))
    np.testing.assert_array_equal(loaded.sample(3, seed=2), model.sample(3, seed=2))


def test_a_bernoulli_artifact_is_not_taken_for_its_continuous_bernoulli_twin(params):
    _fitted(params, "vae").save(families.paths(params, "vae_cb").artifact)
    with pytest.raises(DataError, match=r"model 'vae_cb': saved with hyperparameters .*'bernoulli'"):
        families.load(params, "vae_cb")


def test_an_entry_architecture_override_is_checked_like_the_section(tmp_path, monkeypatch):
    raw = _raw()
    raw["models"]["vae_cb"]["architecture"] = {"decoder": "gaussian", "depth": 2}
    with pytest.raises(ConfigError) as error:
        parse_params(raw)
    assert (
        "models.vae_cb.architecture.decoder: Input should be 'bernoulli' or 'continuous_bernoulli' "
        "(got 'gaussian'); models.vae_cb.architecture.depth: not a key of the MlpVaeArchitecture"
    ) in str(error.value)
    raw = _raw()
    raw["models"]["ppca"]["architecture"] = {"decoder": "continuous_bernoulli"}
    with pytest.raises(ConfigError, match=r"models.ppca.architecture: a ppca model has no architecture"):
        parse_params(raw)
    raw = _raw()
    raw["models"]["cvae_cb"]["architecture"] = {}
    with pytest.raises(
        ConfigError, match=r"'models.cvae_cb.architecture': Dictionary should have at least 1"
    ):
        parse_params(raw)
    # On a tuned entry it replaces keys of the tuned architecture; an unbuildable result names both.
    monkeypatch.chdir(tmp_path)
    shutil.copy(REPO_ROOT / "params_tuned.yaml", tmp_path)
    raw = _raw()
    raw["models"]["cvae_tuned"]["architecture"] = {"decoder": "continuous_bernoulli"}
    raw["models"]["cvae_cb"]["architecture"] = {"stride": 1}  # output_padding 1 needs stride >= 2
    params = parse_params(raw)
    tuned = families.create(params, "cvae_tuned")
    assert tuned.architecture.channels == [8] and tuned.architecture.decoder == "continuous_bernoulli"
    with pytest.raises(
        ConfigError,
        match=r"^models.cvae_cb: params.yaml: cvae.architecture with models.cvae_cb.architecture: ",
    ):
        families.check_buildable(params, "cvae_cb")


def test_pickled_code_in_a_model_file_is_refused_not_run(params, tmp_path):
    marker = tmp_path / "pwned"
    path = families.paths(params, "cvae").artifact
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump({"weights": _Payload(marker)}, fh)
    with pytest.raises(DataError, match="holds pickled objects besides tensors and may be unsafe") as refused:
        families.load(params, "cvae")
    assert not marker.exists()
    message = str(refused.value)
    assert "weights_only" not in message and "\n" not in message
    assert message.endswith("rerun `dvc repro train@cvae`")


def test_model_entries_must_name_what_the_stages_read():
    raw = _raw()
    raw["models"]["cvae_tuned"]["base"] = "cvae"
    with pytest.raises(ConfigError, match=r"models.cvae_tuned.base: must be 'cvae.training'"):
        parse_params(raw)
    raw = _raw()
    raw["models"]["gmm"]["file"] = "params_tuned.yaml"
    with pytest.raises(ConfigError, match=r"\n  - models.gmm.file: only VAE families read a tuned section$"):
        parse_params(raw)
