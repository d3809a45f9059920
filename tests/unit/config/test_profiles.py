"""Params profiles (profiles/smoke.yaml): applied in place or as `dvc exp run -S` arguments."""

from __future__ import annotations

import pytest
import yaml

from pml_ops.config import parse_params
from pml_ops.config.profiles import apply_profile, load_profile, main, set_param_args
from pml_ops.core.errors import ConfigError
from tests.conftest import REPO_ROOT, SMOKE_PROFILE


@pytest.fixture
def raw_params() -> dict:
    return yaml.safe_load((REPO_ROOT / "params.yaml").read_text())


def test_smoke_profile_applies_to_the_committed_params(raw_params):
    profile = load_profile(REPO_ROOT / SMOKE_PROFILE)
    smoke = parse_params(apply_profile(raw_params, profile))
    assert smoke.vae.training.epochs == 1 and smoke.density.subset.train == 300
    assert smoke.bayesopt.plot_iterations == [1, 2]
    # the run knows it is a smoke run: its registered models never take `champion`
    assert smoke.tracking.profile == "smoke" and parse_params(raw_params).tracking.profile == "study"
    assert parse_params(raw_params).vae.training.epochs == 25  # the input is not modified


def test_unknown_or_invalid_profile_keys_are_named(raw_params):
    with pytest.raises(ConfigError, match=r"smoke: 'vae\.trainin\.epochs': params have no 'vae\.trainin'"):
        apply_profile(raw_params, {"vae.trainin.epochs": 1}, "smoke")
    with pytest.raises(ConfigError, match=r"'gp\.nuts\.warmup': params have no such key"):
        apply_profile(raw_params, {"gp.nuts.warmup": 1})
    with pytest.raises(ConfigError, match=r"'gp\.nuts\.num_samples'"):  # validated like params.yaml
        apply_profile(raw_params, {"gp.nuts.num_samples": 0})
    with pytest.raises(ConfigError, match=r"'tracking\.profile'"):  # study or smoke
        apply_profile(raw_params, {"tracking.profile": "quick"})


def test_set_args_and_apply_command(tmp_path, raw_params, capsys):
    assert set_param_args({"a.b": 1, "c": [1, 2], "d": None, "e": "auto"}) == [
        "a.b=1",
        "c=[1, 2]",
        "d=null",
        'e="auto"',
    ]
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw_params))
    profile = tmp_path / "p.yaml"
    profile.write_text("gp.nuts.num_samples: 7\n")
    main(["apply", str(profile), str(params)])
    assert yaml.safe_load(params.read_text())["gp"]["nuts"]["num_samples"] == 7
    main(["set-args", str(profile)])
    assert capsys.readouterr().out == "gp.nuts.num_samples=7\n"
    profile.write_text("- not a mapping\n")
    with pytest.raises(SystemExit, match="expected a mapping of dotted params keys"):
        main(["apply", str(profile), str(params)])
