"""params.yaml validation: every bad value is named before any work starts."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from pml_ops.config import TrainingParams, load_params, parse_params
from pml_ops.core.errors import ConfigError
from tests.conftest import REPO_ROOT


@pytest.fixture
def raw_params() -> dict:
    return yaml.safe_load((REPO_ROOT / "params.yaml").read_text())


def test_committed_params_file_is_valid():
    params = load_params(REPO_ROOT / "params.yaml")
    assert params.data.path == "data/mnist.npz"
    assert params.tracking.experiment


def _with(raw: dict, dotted: str, value) -> dict:
    changed = copy.deepcopy(raw)
    *parents, leaf = dotted.split(".")
    node = changed
    for key in parents:
        node = node[key]
    node[leaf] = value
    return changed


def test_unknown_key_is_named(raw_params):
    with pytest.raises(ConfigError, match=r"unknown key 'data\.mirorrs'"):
        parse_params(_with(raw_params, "data.mirorrs", []))


def test_unknown_section_is_named(raw_params):
    with pytest.raises(ConfigError, match=r"unknown key 'dataa'"):
        parse_params(_with(raw_params, "dataa", {}))


def test_wrong_type_is_named(raw_params):
    with pytest.raises(ConfigError, match=r"'data\.retries': Input should be a valid integer.*got '2'"):
        parse_params(_with(raw_params, "data.retries", "2"))


def test_out_of_range_value_is_named(raw_params):
    with pytest.raises(ConfigError, match=r"'data\.timeout_s': Input should be greater than 0"):
        parse_params(_with(raw_params, "data.timeout_s", -1.0))


def test_empty_mirror_list_is_rejected(raw_params):
    with pytest.raises(ConfigError, match=r"'data\.mirrors\.mnist': List should have at least 1 item"):
        parse_params(_with(raw_params, "data.mirrors.mnist", []))


def test_unknown_dataset_and_a_dataset_without_mirrors_are_named(raw_params):
    with pytest.raises(ConfigError, match=r"'data\.dataset': Input should be 'mnist' or 'fashion-mnist'"):
        parse_params(_with(raw_params, "data.dataset", "cifar"))
    raw = _with(raw_params, "data.dataset", "fashion-mnist")
    del raw["data"]["mirrors"]["fashion-mnist"]
    with pytest.raises(ConfigError, match=r"no mirrors for data\.dataset 'fashion-mnist'"):
        parse_params(raw)


def test_data_info_must_not_overwrite_the_metrics_file(raw_params):
    with pytest.raises(ConfigError, match=r"data\.info: must differ from data\.metrics"):
        parse_params(_with(raw_params, "data.info", "metrics/./prepare.json"))


def test_unknown_decoder_is_named(raw_params):
    with pytest.raises(ConfigError, match=r"'vae\.architecture\.decoder': Input should be 'bernoulli'"):
        parse_params(_with(raw_params, "vae.architecture.decoder", "gaussian"))


def test_missing_key_is_named(raw_params):
    del raw_params["tracking"]["experiment"]
    with pytest.raises(ConfigError, match=r"missing key 'tracking\.experiment'"):
        parse_params(raw_params)


def test_all_errors_reported_at_once(raw_params):
    raw = _with(_with(raw_params, "data.retries", -1), "tracking.uri", 3)
    with pytest.raises(ConfigError, match="2 invalid setting") as caught:
        parse_params(raw)
    assert "data.retries" in str(caught.value) and "tracking.uri" in str(caught.value)


def test_missing_file_and_bad_yaml(tmp_path: Path):
    with pytest.raises(ConfigError, match="parameters file not found"):
        load_params(tmp_path / "params.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping of sections"):
        load_params(bad)


def test_gp_and_bayesopt_errors_are_named(raw_params):
    cases = [
        (
            "gp.nuts.parallel_chains",
            "many",
            r"'gp\.nuts\.parallel_chains': Value error, must be 'auto' or a positive integer",
        ),
        ("gp.nuts.target_accept_prob", 1.5, r"'gp\.nuts\.target_accept_prob': Input should be less than 1"),
        ("gp.noise_variance", 0.0, r"'gp\.noise_variance': Input should be greater than 0"),
        ("gp.priors.lengthscale.scale", -2.0, r"'gp\.priors\.lengthscale\.scale'"),
        (
            "gp.objective",
            "sin(20*y)",
            r"'gp\.objective': Value error, objective 'sin\(20\*y\)': unknown name 'y'",
        ),
        ("bayesopt.acquisition", "ucb", r"'bayesopt\.acquisition': Input should be 'expected_improvement'"),
        ("bayesopt.bounds", [1.0, -1.0], r"'bayesopt': Value error, bounds: lower bound 1\.0 must be below"),
        ("bayesopt.x_init", [0.0, 2.0], r"x_init: \[2\.0\] outside bounds"),
    ]
    for key, value, message in cases:
        with pytest.raises(ConfigError, match=message):
            parse_params(_with(raw_params, key, value))


def test_cpu_threads_is_auto_a_count_or_null(raw_params, monkeypatch):
    import torch

    from pml_ops.core.resources import usable_cpus
    from pml_ops.density.data import resolve_device

    assert parse_params(raw_params).density.cpu_threads == "auto"  # the default
    for value in (3, None):
        assert parse_params(_with(raw_params, "density.cpu_threads", value)).density.cpu_threads == value
    for bad in ("many", 0):
        message = r"'density\.cpu_threads': Value error, must be 'auto', a positive integer or null"
        with pytest.raises(ConfigError, match=message):
            parse_params(_with(raw_params, "density.cpu_threads", bad))
    set_to = []
    monkeypatch.setattr(torch, "set_num_threads", set_to.append)
    resolve_device("cpu", "auto")
    resolve_device("cpu", 1)
    assert set_to == [usable_cpus(), 1]
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 3, 5})
    assert usable_cpus() == 3


def test_fused_adam_is_a_boolean_off_by_default(raw_params):
    params = parse_params(raw_params)
    assert not params.vae.training.fused_adam and not params.cvae.training.fused_adam
    assert not TrainingParams(epochs=1, batch_size=8, lr=1e-3).fused_adam  # sections that omit it
    assert parse_params(_with(raw_params, "cvae.training.fused_adam", True)).cvae.training.fused_adam
    with pytest.raises(ConfigError, match=r"'vae\.training\.fused_adam': Input should be a valid boolean"):
        parse_params(_with(raw_params, "vae.training.fused_adam", "yes"))
