"""The BO loop with a kernel other than the study's RBF, chosen in params.yaml (`bayesopt.kernel`,
priors from `gp.priors`): the settings carry it, the loop runs with it for every acquisition,
and a kernel the priors cannot serve is refused before any work."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest
import yaml

from pml_ops.bayesopt.loop import minimise
from pml_ops.bayesopt.settings import bo_settings
from pml_ops.config import parse_params
from pml_ops.core.errors import ConfigError
from pml_ops.core.expression import Expression
from pml_ops.gp.kernels import RBF, Matern52, Periodic, Sum
from pml_ops.inference.nuts import NUTSSettings
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def raw_params() -> dict:
    return yaml.safe_load((REPO_ROOT / "params.yaml").read_text())


def _with(raw: dict, changes: dict) -> dict:
    changed = copy.deepcopy(raw)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        node = changed
        for key in parents:
            node = node[key]
        if value is None:
            del node[leaf]
        else:
            node[leaf] = value
    return changed


def test_the_settings_carry_the_kernel_and_the_gp_priors(raw_params):
    assert bo_settings(parse_params(raw_params)).kernel == RBF()  # the study's default
    settings = bo_settings(parse_params(_with(raw_params, {"bayesopt.kernel": "rbf + periodic"})))
    assert settings.kernel == Sum((RBF(), Periodic()))
    assert (
        settings.period_prior is not None
        and settings.period_prior.loc == raw_params["gp"]["priors"]["period"]["loc"]
    )
    model = settings.model(np.array([0.0, 0.5]), np.array([1.0, 2.0]))
    assert model.kernel == settings.kernel and model.prior("period") == settings.period_prior


def test_a_bad_bayesopt_kernel_is_refused_naming_the_key(raw_params):
    with pytest.raises(
        ConfigError, match=r"'bayesopt\.kernel': Value error, unknown kernel 'matern72'; known: "
    ):
        parse_params(_with(raw_params, {"bayesopt.kernel": "matern72"}))
    # the loop's priors are gp.priors: a periodic BO kernel needs gp.priors.period
    with pytest.raises(ConfigError, match=r"gp\.priors\.period: missing; bayesopt\.kernel 'periodic'"):
        parse_params(_with(raw_params, {"bayesopt.kernel": "periodic", "gp.priors.period": None}))


@pytest.mark.parametrize(
    "kernel,acquisition",
    [
        ("matern52", "expected_improvement"),
        ("rbf + periodic", "expected_improvement"),
        ("rbf + periodic", "thompson"),
        ("matern52", "lower_confidence_bound"),
    ],
)
def test_the_loop_runs_with_the_chosen_kernel(raw_params, kernel, acquisition):
    params = parse_params(_with(raw_params, {"bayesopt.kernel": kernel, "bayesopt.acquisition": acquisition}))
    # two iterations of the study's problem with a short NUTS run per fit (real, just small)
    settings = replace(
        bo_settings(params),
        iterations=2,
        grid_points=201,
        acquisition_samples=32,
        nuts=NUTSSettings(1, 60, 32, 0, 1, 0.8, 6, False, 2.0),
    )
    assert settings.kernel == (Matern52() if kernel == "matern52" else Sum((RBF(), Periodic())))
    objective = Expression(params.bayesopt.objective)
    x_init = np.asarray(params.bayesopt.x_init, dtype=float)
    result = minimise(objective, x_init, settings, seed=0, snapshot_at=(1, 2), show_progress=False)
    low, high = settings.bounds
    assert len(result.x) == len(x_init) + 2 and np.all((result.x >= low) & (result.x <= high))
    np.testing.assert_array_equal(result.y, objective(result.x))
    best = result.best_so_far()
    assert len(best) == 3 and np.all(np.diff(best) <= 0)
    for snapshot in result.snapshots.values():
        assert np.all(np.isfinite(snapshot.mean)) and np.all(np.isfinite(snapshot.utility))
        assert np.all(snapshot.lower <= snapshot.mean) and np.all(snapshot.mean <= snapshot.upper)
