"""The registry's champion among comparable versions only, on a small PPCA in a fresh SQLite store
read back through MLflow's own client: versions scored on other data, on another number of test
images, with another objective or at the smoke profile never displace the champion."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import mlflow
import pytest
import yaml
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pml_ops.tracking.model_registry import Comparability, champion, comparability, register

NAME = "pml-ops-ppca"
STUDY = Comparability(
    dataset="mnist",
    data_md5="a" * 32,
    test_images=10000,
    objective="exact log-likelihood",
    observation="Gaussian density over pixel values in [0, 1]",
    profile="study",
)


def _alias(alias: str) -> str | None:
    try:
        return MlflowClient().get_model_version_by_alias(NAME, alias).version
    except MlflowException:
        return None


@pytest.fixture
def uri(logged_ppca) -> str:
    _, _, model_id, _ = logged_ppca
    return f"models:/{model_id}"


def test_same_key_better_takes_champion_and_worse_is_challenger(uri):
    first = register(uri, "ppca", -150.0, {}, STUDY)
    assert (first.alias, first.compared) == ("champion", True)
    worse = register(uri, "ppca", -151.0, {}, STUDY)
    assert (worse.alias, worse.compared, worse.previous_champion) == ("challenger", True, first.version)
    assert (
        worse.summary()
        == "registered pml-ops-ppca v2: challenger (champion v1 scored -150.00 on the same data)"
    )
    better = register(uri, "ppca", -142.7, {}, STUDY)
    assert better.alias == "champion"
    assert _alias("champion") == better.version and _alias("challenger") == worse.version


@pytest.mark.parametrize(
    ("change", "phrase"),
    [
        ({"data_md5": "b" * 32}, "scored on data with DVC md5 bbbbbbbb, the champion v1 on aaaaaaaa"),
        ({"dataset": "fashion-mnist"}, "scored on fashion-mnist, the champion v1 on mnist"),
        ({"test_images": 2000}, "scored on 2000 test images, the champion v1 on 10000"),
        ({"objective": "ELBO"}, "objective ELBO, the champion v1's exact log-likelihood"),
        ({"observation": "Bernoulli"}, "observation model Bernoulli, the champion v1's Gaussian density"),
    ],
)
def test_another_key_never_displaces_the_champion(uri, change, phrase):
    champion = register(uri, "ppca", -150.0, {}, STUDY)
    other = replace(STUDY, **change)
    better = register(uri, "ppca", -100.0, {}, other)  # a far higher score, not comparable
    assert better.alias == f"candidate-{other.digest()}" and not better.compared
    assert _alias("champion") == champion.version
    assert _alias(f"candidate-{other.digest()}") == better.version
    tags = MlflowClient().get_model_version(NAME, better.version).tags
    assert phrase in tags["not_compared"] and phrase in better.summary()
    assert better.summary().startswith(f"registered {NAME} v2: candidate-{other.digest()} (not compared: ")
    # its own key's best keeps the candidate alias; a worse version of that key takes none
    worse = register(uri, "ppca", -120.0, {}, other)
    assert worse.alias is None and _alias(f"candidate-{other.digest()}") == better.version
    # the study's key still decides the champion
    assert register(uri, "ppca", -149.0, {}, STUDY).alias == "champion"


def test_smoke_profile_never_takes_champion_even_first_and_best(uri):
    smoke = replace(STUDY, test_images=100, profile="smoke")
    first = register(uri, "ppca", -50.0, {}, smoke)
    assert (first.alias, first.compared) == ("smoke", False)
    assert _alias("champion") is None and _alias("smoke") == first.version
    tags = MlflowClient().get_model_version(NAME, first.version).tags
    assert tags["profile"] == "smoke" and "never compete for champion" in tags["not_compared"]
    study = register(uri, "ppca", -150.0, {}, STUDY)  # worse, but the first version to compete
    assert study.alias == "champion"
    again = register(uri, "ppca", -10.0, {}, replace(STUDY, profile="smoke"))  # even on the study's images
    assert again.alias == "smoke" and _alias("champion") == study.version and _alias("smoke") == again.version


def test_version_page_shows_the_key(uri):
    version = register(uri, "ppca", -150.0, {"git_commit": "c0ffee"}, STUDY).version
    tags = MlflowClient().get_model_version(NAME, version).tags
    assert {key: tags[key] for key in ("dataset", "data_md5", "test_images", "objective", "profile")} == {
        "dataset": "mnist",
        "data_md5": "a" * 32,
        "test_images": "10000",
        "objective": "exact log-likelihood",
        "profile": "study",
    }
    assert tags["observation"] == STUDY.observation and tags["comparability_key"] == STUDY.digest()
    assert tags["test_score"] == "-150.0" and tags["git_commit"] == "c0ffee" and "not_compared" not in tags
    assert Comparability.from_tags(tags) == STUDY


def test_unknown_data_digest_competes_with_nothing(uri):
    unknown = register(uri, "ppca", -100.0, {}, replace(STUDY, data_md5="unknown"))
    assert unknown.alias is None and _alias("champion") is None
    assert (
        "data_md5 is unknown" in MlflowClient().get_model_version(NAME, unknown.version).tags["not_compared"]
    )


def test_a_champion_registered_without_a_key_yields(uri):
    client = MlflowClient()
    legacy = mlflow.register_model(uri, NAME, tags={"test_score": "-100.0"})
    client.set_registered_model_alias(NAME, "champion", legacy.version)
    held = champion(client, NAME)
    assert held is not None and held.key is None
    keyed = register(uri, "ppca", -150.0, {}, STUDY)
    assert keyed.alias == "champion" and "no comparability key" in keyed.reason


def test_key_from_the_evaluate_metrics_and_dvc_lock(logged_ppca):
    store, _, _, _ = logged_ppca  # the working directory
    metrics = {"test_images": 100, "objective": "ELBO", "observation": "Bernoulli", "test_score": -1.0}
    assert comparability("mnist", "data/mnist.npz", metrics, "smoke").data_md5 == "unknown"
    lock = {"stages": {"prepare": {"outs": [{"path": "data/mnist.npz", "md5": "f" * 32}]}}}
    (Path(store) / "dvc.lock").write_text(yaml.safe_dump(lock))
    key = comparability("mnist", "data/mnist.npz", metrics, "smoke")
    assert key == Comparability("mnist", "f" * 32, 100, "ELBO", "Bernoulli", "smoke")
    assert len(key.digest()) == 12 and key.digest() != replace(key, profile="study").digest()
