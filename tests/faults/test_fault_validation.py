"""Faults: inputs `validate` used to accept that failed later (or never). Each is now refused
before any work starts, with a message naming the key or the line."""

from __future__ import annotations

import copy
import re
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from pml_ops.cli.main import main
from pml_ops.config import MAX_GMM_COMPONENTS, load_params, parse_params
from pml_ops.core.errors import ConfigError
from pml_ops.core.expression import Expression
from pml_ops.density.families import load_tuned
from pml_ops.tuning.storage import resolve_storage
from tests.conftest import REPO_ROOT

PARAMS_TEXT = (REPO_ROOT / "params.yaml").read_text()


def _raw() -> dict:
    return yaml.safe_load(PARAMS_TEXT)


def _with(dotted: str, value) -> dict:
    raw = copy.deepcopy(_raw())
    *parents, leaf = dotted.split(".")
    node = raw
    for key in parents:
        node = node[key]
    node[leaf] = value
    return raw


def _line_of(text: str, start: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), 1) if line.startswith(start))


def test_duplicate_key_in_params_yaml_is_refused_with_its_lines(tmp_path, capsys):
    first = _line_of(PARAMS_TEXT, "  n_components:")
    text = PARAMS_TEXT.replace("  n_components: 10\n", "  n_components: 10\n  n_components: 20\n", 1)
    path = tmp_path / "params.yaml"
    path.write_text(text)
    assert main(["--params", str(path), "validate"]) == 2
    err = capsys.readouterr().err
    assert f"duplicate key(s), the last would silently win: 'gmm.n_components' on line {first + 1} " in err
    assert f"(first on line {first})" in err


def test_duplicate_key_in_params_tuned_yaml_is_refused(tmp_path):
    tuned = tmp_path / "params_tuned.yaml"
    tuned.write_text("cvae_tuned:\n  lr: 0.001\n  lr: 0.1\n")
    with pytest.raises(ConfigError, match=r"'cvae_tuned\.lr' on line 3 \(first on line 2\)"):
        load_tuned(tuned, "cvae_tuned", load_params(REPO_ROOT / "params.yaml").cvae)


@pytest.mark.parametrize(
    ("objective", "message"),
    [
        ("9**9**9**9", "a power inside an exponent"),
        ("x**100000", "the exponent 100000 exceeds 64"),
        ("1e300*x", r"exceeds 1e\+06 in size"),
        ("x<<99999", "the operator LShift is not allowed"),
        ("sin(x, x)", "takes exactly one argument"),
    ],
)
@pytest.mark.parametrize("section", ["gp", "bayesopt"])
def test_objective_that_could_blow_up_is_refused_at_once(section, objective, message):
    started = time.monotonic()
    with pytest.raises(ConfigError, match=rf"'{section}\.objective'.*{message}"):
        parse_params(_with(f"{section}.objective", objective))
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("section", "objective", "where"),
    [
        ("bayesopt", "1/x", r"bayesopt\.bounds \[-1, 1\]: inf at x = 0"),
        ("bayesopt", "log(x)", r"bayesopt\.bounds \[-1, 1\]: nan at x = -1"),
        ("gp", "1/x", r"gp\.x_train.*: inf at x = 0"),
    ],
)
def test_objective_not_finite_on_the_search_interval_is_refused(section, objective, where):
    expected = rf"'{section}'.*objective {re.escape(repr(objective))} is not finite on {where}"
    with pytest.raises(ConfigError, match=expected):
        parse_params(_with(f"{section}.objective", objective))


def test_objectives_stay_usable():
    assert Expression("2**x + x**3 - exp(-x)")(1.0) == pytest.approx(2 + 1 - 0.36787944117144233)
    parse_params(_with("bayesopt.objective", "1/(x + 2)"))  # finite on [-1, 1]


def test_gmm_components_are_bounded():
    with pytest.raises(
        ConfigError, match=rf"'gmm\.n_components': Input should be less than or equal to {MAX_GMM_COMPONENTS}"
    ):
        parse_params(_with("gmm.n_components", 100000))
    raw = _with("gmm.n_components", 500)
    raw["density"]["subset"]["train"] = 300
    with pytest.raises(
        ConfigError, match=r"gmm\.n_components: 500 components need at least as many training images"
    ):
        parse_params(raw)


@pytest.mark.parametrize("port", ["70000", "0", "http"])
def test_ui_port_out_of_range_is_refused(port, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["ui", "--port", port])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--port: must be" in err and "from 1 to 65535" in err


def test_mysql_storage_is_refused_with_the_supported_ones(tmp_path: Path):
    with pytest.raises(
        ConfigError, match=r"'mysql' databases are not supported.*sqlite:///FILE.*postgresql://"
    ):
        resolve_storage("mysql://user@db-host/optuna", tmp_path)
    assert "MySQL" not in (REPO_ROOT / "README.md").read_text()


def test_slow_objective_evaluation_is_cut_off_and_an_outer_alarm_survives(monkeypatch):
    import signal

    from pml_ops.core import expression as module

    monkeypatch.setattr(module, "EVALUATION_LIMIT_S", 0.2)
    slow = Expression("x")
    monkeypatch.setattr(Expression, "__call__", lambda self, x: time.sleep(5))
    signal.setitimer(signal.ITIMER_REAL, 60)  # an outer alarm, as pytest-timeout sets
    try:
        started = time.monotonic()
        with pytest.raises(ConfigError, match=r"one evaluation on the grid took over 0.2 s"):
            module.check_finite(slow, np.zeros(3), "the grid")
        assert time.monotonic() - started < 2
        assert 55 < signal.getitimer(signal.ITIMER_REAL)[0] <= 60
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
