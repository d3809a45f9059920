"""Tuning settings in params.yaml and the best-params file: bad values are named by key."""

from __future__ import annotations

import copy

import pytest
import yaml

from pml_ops.config import load_params, parse_params
from pml_ops.core.errors import ConfigError
from pml_ops.density.families import load_tuned
from pml_ops.tuning.storage import resolve_storage
from tests.conftest import REPO_ROOT


@pytest.fixture
def raw() -> dict:
    return yaml.safe_load((REPO_ROOT / "params.yaml").read_text())


def changed(raw: dict, dotted: str, value) -> dict:
    out = copy.deepcopy(raw)
    *parents, leaf = dotted.split(".")
    node = out
    for key in parents:
        node = node[key]
    node[leaf] = value
    return out


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "tuning.pruner",
            {"kind": "median", "startup_trials": 3, "warmup_epochs": 0},
            r"'tuning': Value error, tuning\.pruner was removed: the study is multi-objective",
        ),
        (
            "tuning.trial.max_epoch_time_ratio",
            2.0,
            r"'tuning\.trial': Value error, max_epoch_time_ratio was replaced by max_cost_ratio",
        ),
        (
            "tuning.trial.max_cost_ratio",
            0.0,
            r"'tuning\.trial\.max_cost_ratio': Input should be greater than 0",
        ),
        (
            "tuning.trial.max_train_cost_ratio",
            1.5,
            r"max_train_cost_ratio \(1\.5\) is below max_cost_ratio \(2\): trials the promotion budget",
        ),
        (
            "tuning.cvae.space.lr",
            {"type": "float", "low": 0.0, "high": 1.0, "log": True},
            r"tuning\.cvae\.space\.lr.*log-scaled float range needs low > 0",
        ),
        (
            "tuning.cvae.space.conv_layers",
            {"type": "int", "low": 3, "high": 1, "log": False},
            r"low \(3\) must not exceed high \(1\)",
        ),
        (
            "tuning.cvae.space.stride",
            {"type": "categorical", "choices": [0, 2]},
            r"'stride' must only allow values >= 1",
        ),
        (
            "tuning.vae.space.depth",
            {"type": "categorical", "choices": []},
            r"tuning\.vae\.space\.depth\.categorical\.choices",
        ),
        ("tuning.workers", 0, r"'tuning\.workers': Input should be greater than or equal to 1"),
        ("tuning.timeout_s", -5.0, r"'tuning\.timeout_s': Input should be greater than 0"),
        (
            "tuning.cvae.space.kernel_size",
            {"type": "categorical", "choices": [3, "5"]},
            r"tuning\.cvae\.space\.kernel_size",
        ),
    ],
)
def test_bad_tuning_values_are_named(raw, key, value, message):
    with pytest.raises(ConfigError, match=message):
        parse_params(changed(raw, key, value))


def test_storage_urls(tmp_path):
    assert resolve_storage("sqlite:///optuna.db", tmp_path) == f"sqlite:///{tmp_path}/optuna.db"
    assert resolve_storage("postgresql://u@h:5432/db", tmp_path).startswith("postgresql+psycopg2://u@h")
    with pytest.raises(ConfigError, match=r"tuning\.storage: not a database URL: 'optuna\.db'"):
        resolve_storage("optuna.db", tmp_path)


def test_load_tuned_replaces_architecture_and_lr_only(tmp_path):
    params = load_params(REPO_ROOT / "params.yaml")
    architecture = {**params.cvae.architecture.model_dump(), "kernel_size": 5, "padding": 2}
    section = {"architecture": architecture, "lr": 0.004, "source": {"study": "s", "trial": 3}}
    file = tmp_path / "params_tuned.yaml"
    file.write_text(yaml.safe_dump({"cvae_tuned": section}))
    tuned = load_tuned(file, "cvae_tuned", params.cvae)
    assert tuned.architecture.kernel_size == 5 and tuned.training.lr == 0.004
    assert tuned.training.epochs == params.cvae.training.epochs

    with pytest.raises(ConfigError, match=r"no 'vae_tuned' section; run `pml-ops tune --model vae` first"):
        load_tuned(file, "vae_tuned", params.vae)
    section["architecture"]["kernel_size"] = "5"
    file.write_text(yaml.safe_dump({"cvae_tuned": section}))
    with pytest.raises(
        ConfigError, match=r"'cvae_tuned\.architecture\.kernel_size': Input should be a valid integer"
    ):
        load_tuned(file, "cvae_tuned", params.cvae)
    with pytest.raises(ConfigError, match=r"not found; run `pml-ops tune --model cvae` first"):
        load_tuned(tmp_path / "missing.yaml", "cvae_tuned", params.cvae)
