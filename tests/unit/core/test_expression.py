"""The safe objective expression: numpy's values, unsafe text refused, and the grid minimum of
the study's objective against scipy's bounded local searches."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from pml_ops.core.errors import ConfigError
from pml_ops.core.expression import Expression, grid_minimum

STUDY = "sin(20*x) + 2*cos(14*x) - 2*sin(6*x)"


def test_expression_matches_numpy_and_rejects_unsafe_text():
    x = np.linspace(-1, 1, 7)
    f = Expression(STUDY)
    np.testing.assert_allclose(f(x), np.sin(20 * x) + 2 * np.cos(14 * x) - 2 * np.sin(6 * x))
    assert pickle.loads(pickle.dumps(f))(0.3) == pytest.approx(f(0.3))
    for bad, message in [
        ("__import__('os')", "unknown name|only numpy"),
        ("x.real", "Attribute is not allowed"),
        ("sin(", "not a valid expression"),
        ("foo(x)", "only numpy functions may be called"),
        ("y + 1", "unknown name 'y'"),
    ]:
        with pytest.raises(ConfigError, match=message):
            Expression(bad)


def test_grid_minimum_finds_the_study_global_minimum():
    from scipy.optimize import minimize_scalar

    f = Expression(STUDY)
    local = [
        minimize_scalar(f, bounds=(c - 0.05, c + 0.05), method="bounded")
        for c in np.linspace(-0.95, 0.95, 39)
    ]
    reference = min(local, key=lambda result: result.fun)
    x_min, f_min = grid_minimum(f, (-1.0, 1.0))
    assert f_min == pytest.approx(float(reference.fun), abs=1e-8)
    assert x_min == pytest.approx(float(reference.x), abs=1e-4)
    assert x_min == pytest.approx(0.233, abs=0.01) and f_min == pytest.approx(-4.954, abs=0.01)
