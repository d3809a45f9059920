"""GP kernels as objects: the params.yaml grammar and its errors, hyperparameter names, batched
covariances, and the GP's log density for every kernel against independent references (Pyro's
own `GPRegression` with Pyro's kernels, finite differences, the hand-written RBF path), the
study's data sampled by NUTS with each kernel, and the study's draws unchanged."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import arviz as az
import numpy as np
import pytest
import torch
import yaml

from pml_ops.config import load_params, parse_params
from pml_ops.config.kernel_expression import KERNEL_HYPERPARAMETERS, KNOWN_KERNELS, parse_kernel_expression
from pml_ops.core.errors import ConfigError
from pml_ops.core.expression import Expression
from pml_ops.gp import diagnostics
from pml_ops.gp.figures import plot_scatter
from pml_ops.gp.from_params import gp_model, kernel, nuts_settings
from pml_ops.gp.kernels import (
    KERNELS,
    RBF,
    BaseKernel,
    Kernel,
    Matern12,
    Periodic,
    Product,
    RationalQuadratic,
    Sum,
    parse_kernel,
)
from pml_ops.gp.model import GPModel, autograd_log_joint_and_grad, log_joint_and_grad
from pml_ops.gp.predict import predict, sample_paths
from pml_ops.inference.nuts import Posterior, sample_posterior
from tests.conftest import REPO_ROOT

SINGLE = ["rbf", "matern12", "matern32", "matern52", "rational_quadratic", "periodic"]
SUM, PRODUCT = "rbf + periodic", "matern32 * periodic"


@pytest.fixture(scope="module")
def raw_params() -> dict:
    return yaml.safe_load((REPO_ROOT / "params.yaml").read_text())


@pytest.fixture(scope="module")
def study():
    """The study's GP section (params.yaml) and its training data."""
    cfg = load_params(REPO_ROOT / "params.yaml").gp
    x = np.asarray(cfg.x_train, dtype=float)
    return cfg, x, Expression(cfg.objective)(x)


def study_model(study, text: str) -> GPModel:
    cfg, x, y = study
    return gp_model(x, y, cfg.noise_variance, cfg.priors, kernel(text, "gp.kernel"))


def _with(raw: dict, dotted: str, value) -> dict:
    changed = copy.deepcopy(raw)
    *parents, leaf = dotted.split(".")
    node = changed
    for key in parents:
        node = node[key]
    if value is None:
        del node[leaf]
    else:
        node[leaf] = value
    return changed


# --- the grammar and the names ------------------------------------------------------------------


def test_the_grammar_has_the_usual_precedence_and_parentheses():
    assert parse_kernel("rbf") == RBF()
    assert parse_kernel("rbf + matern12 * periodic") == Sum((RBF(), Product((Matern12(), Periodic()))))
    assert parse_kernel("(rbf + matern12) * periodic") == Product((Sum((RBF(), Matern12())), Periodic()))
    assert parse_kernel(" ( ( rbf ) ) ") == RBF()
    assert parse_kernel("rbf+rbf+rbf") == Sum((RBF(), RBF(), RBF()))
    assert RBF() + Matern12() * Periodic() == parse_kernel("rbf + matern12 * periodic")
    assert (RBF() + Matern12()) + Periodic() == parse_kernel("rbf + matern12 + periodic")
    for text in ("rbf + matern12 * periodic", "(rbf + matern12) * periodic", "rbf * periodic * matern52"):
        assert parse_kernel(str(parse_kernel(text))) == parse_kernel(text)


def test_an_unknown_kernel_or_bad_syntax_is_refused_naming_the_key():
    with pytest.raises(ConfigError) as error:
        parse_kernel("rbf + foo", "gp.kernel")
    assert str(error.value) == f"gp.kernel: unknown kernel 'foo'; known: {KNOWN_KERNELS}"
    assert KNOWN_KERNELS == "matern12, matern32, matern52, periodic, rational_quadratic, rbf"
    for bad, message in [
        ("", "empty kernel"),
        ("rbf +", "expected a kernel name, found the end"),
        ("rbf * * periodic", r"expected a kernel name, found '\*'"),
        ("(rbf + periodic", r"missing '\)'"),
        ("rbf periodic", "unexpected 'periodic'"),
        ("rbf - periodic", "unexpected '-'"),
        ("rbf + periodic)", r"unexpected '\)'"),
    ]:
        with pytest.raises(ConfigError, match=rf"^bayesopt\.kernel: .*{message}"):
            parse_kernel_expression(bad, "bayesopt.kernel")


def test_hyperparameter_names_plain_for_one_kernel_prefixed_in_combinations():
    assert parse_kernel("rbf").parameter_names == ("variance", "lengthscale")
    assert parse_kernel("rational_quadratic").parameter_names == ("variance", "lengthscale", "alpha")
    assert parse_kernel("periodic").parameter_names == ("variance", "lengthscale", "period")
    assert parse_kernel("rbf + periodic").parameter_names == (
        "rbf.variance",
        "rbf.lengthscale",
        "periodic.variance",
        "periodic.lengthscale",
        "periodic.period",
    )
    combined = parse_kernel("rbf * (rbf + matern12) + rbf")
    assert combined.parameter_names == (
        "rbf.variance",
        "rbf.lengthscale",
        "rbf_2.variance",
        "rbf_2.lengthscale",
        "matern12.variance",
        "matern12.lengthscale",
        "rbf_3.variance",
        "rbf_3.lengthscale",
    )
    assert [h.kind for h in combined.hyperparameters] == ["variance", "lengthscale"] * 4


def test_the_kernel_classes_declare_what_the_config_grammar_knows():
    assert {name: cls.kinds for name, cls in KERNELS.items()} == KERNEL_HYPERPARAMETERS
    assert all(cls.name == name and issubclass(cls, BaseKernel) for name, cls in KERNELS.items())


# --- the config ---------------------------------------------------------------------------------


def test_config_defaults_and_kernel_errors_name_the_key(raw_params):
    assert parse_params(_with(raw_params, "gp.kernel", None)).gp.kernel == "rbf"
    assert parse_params(_with(raw_params, "bayesopt.kernel", None)).bayesopt.kernel == "rbf"
    assert parse_params(raw_params).gp.kernel == "rbf"
    with pytest.raises(
        ConfigError, match=r"'gp\.kernel': Value error, unknown kernel 'foo'; known: matern12"
    ):
        parse_params(_with(raw_params, "gp.kernel", "rbf + foo"))
    with pytest.raises(ConfigError, match=r"'gp\.kernel': Value error, kernel 'rbf \+': expected a kernel"):
        parse_params(_with(raw_params, "gp.kernel", "rbf +"))
    without_period = _with(_with(raw_params, "gp.priors.period", None), "gp.kernel", "rbf + periodic")
    with pytest.raises(ConfigError, match=r"gp\.priors\.period: missing; gp\.kernel 'rbf \+ periodic'"):
        parse_params(without_period)
    without_alpha = _with(raw_params, "gp.priors.alpha", None)
    assert parse_params(without_alpha).gp.priors.alpha is None  # rbf needs no alpha
    with pytest.raises(ConfigError, match=r"gp\.priors\.alpha: missing; gp\.kernel 'rational_quadratic'"):
        parse_params(_with(without_alpha, "gp.kernel", "rational_quadratic"))


# --- covariances --------------------------------------------------------------------------------


def _values(kernel: Kernel, batch: tuple[int, ...], seed: int = 0) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    return {
        name: torch.as_tensor(np.exp(rng.normal(-0.5, 0.5, batch)), dtype=torch.float64)
        for name in kernel.parameter_names
    }


@pytest.mark.parametrize("text", [*SINGLE, SUM, PRODUCT])
def test_covariance_is_batched_symmetric_and_its_diagonal_matches(text):
    k = parse_kernel(text)
    x1 = torch.linspace(-1, 1, 7, dtype=torch.float64)
    x2 = torch.linspace(-0.3, 0.8, 4, dtype=torch.float64)
    values = _values(k, (2, 3))
    assert k.covariance(x1, x2, values).shape == (2, 3, 7, 4)
    square = k.covariance(x1, x1, values)
    torch.testing.assert_close(square, square.transpose(-1, -2))
    torch.testing.assert_close(k.diagonal(x1, values), torch.diagonal(square, dim1=-2, dim2=-1))
    assert bool((torch.linalg.eigvalsh(square) > -1e-10).all())  # positive semi-definite
    one = {name: value[1, 2] for name, value in values.items()}  # unbatched: a scalar each
    torch.testing.assert_close(k.covariance(x1, x2, one), k.covariance(x1, x2, values)[1, 2])


def test_sum_and_product_combine_their_kernels():
    x = torch.linspace(-1, 1, 5, dtype=torch.float64)
    values = _values(parse_kernel(SUM), (3,))
    rbf = RBF().covariance(x, x, {k: values[f"rbf.{k}"] for k in RBF.kinds})
    periodic = Periodic().covariance(x, x, {k: values[f"periodic.{k}"] for k in Periodic.kinds})
    torch.testing.assert_close(parse_kernel(SUM).covariance(x, x, values), rbf + periodic)
    # a product names its hyperparameters as a sum of the same kernels does
    torch.testing.assert_close(parse_kernel("rbf * periodic").covariance(x, x, values), rbf * periodic)
    torch.testing.assert_close(
        parse_kernel("rbf * periodic").diagonal(x, values), torch.diagonal(rbf * periodic, dim1=-2, dim2=-1)
    )


# --- the log density against Pyro, finite differences and the RBF fast path ---------------------

PYRO_CLASSES = {
    "rbf": "RBF",
    "matern12": "Exponential",
    "matern32": "Matern32",
    "matern52": "Matern52",
    "rational_quadratic": "RationalQuadratic",
    "periodic": "Periodic",
}
PYRO_ATTRIBUTES = {"alpha": "scale_mixture"}  # Pyro's name where it differs from ours


def pyro_kernel(k: Kernel, model: GPModel):
    """The same kernel in `pyro.contrib.gp.kernels`, each hyperparameter with its LogNormal prior
    as a `PyroSample`; a sum or product as Pyro's binary `Sum`/`Product`, left to right."""
    import pyro.contrib.gp as gp
    import pyro.distributions as dist
    from pyro.nn import PyroSample

    if isinstance(k, BaseKernel):
        pyro = getattr(gp.kernels, PYRO_CLASSES[k.name])(input_dim=1)
        for kind in k.kinds:
            prior = model.prior(kind)
            loc, scale = (
                torch.tensor(prior.loc, dtype=torch.float64),
                torch.tensor(prior.scale, dtype=torch.float64),
            )
            setattr(pyro, PYRO_ATTRIBUTES.get(kind, kind), PyroSample(dist.LogNormal(loc, scale)))
        return pyro
    assert isinstance(k, Sum | Product)
    combine = gp.kernels.Sum if isinstance(k, Sum) else gp.kernels.Product
    parts = [pyro_kernel(part, model) for part in k.kernels]
    combined = parts[0]
    for part in parts[1:]:
        combined = combine(combined, part)
    return combined


def pyro_sites(pyro, prefix: str = "kernel") -> list[str]:
    """Pyro's sample-site names of the kernel's hyperparameters, in our order."""
    import pyro.contrib.gp as gp

    if isinstance(pyro, gp.kernels.Combination):
        return pyro_sites(pyro.kern0, f"{prefix}.kern0") + pyro_sites(pyro.kern1, f"{prefix}.kern1")
    extra = {"RationalQuadratic": ["scale_mixture"], "Periodic": ["period"]}.get(type(pyro).__name__, [])
    return [f"{prefix}.{name}" for name in ["variance", "lengthscale", *extra]]


@pytest.fixture
def exact_pyro_distances(monkeypatch):
    """Pyro's Matérn kernels take sqrt(r^2 + 1e-12) to keep the gradient at r = 0 finite; ours use
    |x - z| / l, exact with a finite gradient. For a like-for-like density the reference takes
    the exact root (values only: Pyro's gradients are not used)."""
    from pyro.contrib.gp.kernels import isotropic

    monkeypatch.setattr(isotropic, "_torch_sqrt", lambda x, eps=0.0: x.sqrt())


def points(model: GPModel, count: int = 5, seed: int = 0) -> np.ndarray:
    """Unconstrained points where K + noise I is well conditioned enough for 1e-10 agreement:
    around the study posterior's bulk (log variance ~ 0.7, log lengthscale ~ -1.9)."""
    centre = {"variance": 0.5, "lengthscale": -1.6, "alpha": 0.0, "period": -0.5}
    rng = np.random.default_rng(seed)
    base = np.array([centre[h.kind] for h in model.kernel.hyperparameters])
    return base + rng.uniform(-0.6, 0.6, (count, len(base)))


@pytest.mark.parametrize("text", [*SINGLE, SUM, PRODUCT])
def test_log_joint_equals_pyro_gpregression(study, text, exact_pyro_distances, record_property):
    """log p(y, u) over u = log theta equals minus Pyro's potential for the plain model:
    `GPRegression` with Pyro's kernel, `PyroSample` LogNormal priors, fixed noise, jitter 0."""
    import pyro.contrib.gp as gp
    from pyro.infer.mcmc.util import initialize_model

    model = study_model(study, text)
    x, y = model.tensors()
    pyro = pyro_kernel(model.kernel, model)
    regression = gp.models.GPRegression(
        x, y, pyro, noise=torch.tensor(model.noise, dtype=torch.float64), jitter=0.0
    ).double()
    sites = pyro_sites(pyro)
    start = {site: torch.tensor(0.0, dtype=torch.float64) for site in sites}
    _, potential, _, _ = initialize_model(regression.model, initial_params=start)
    differences = []
    for u in points(model):
        expected = -float(potential({site: torch.tensor(u[i]) for i, site in enumerate(sites)}).detach())
        ours, _ = model.log_density_and_grad(u)
        batched = float(model.log_joint(torch.as_tensor(u[None])).squeeze())
        differences += [abs(ours - expected), abs(batched - expected)]
    record_property("max_abs_difference_to_pyro", max(differences))
    print(f"{text}: max |ours - Pyro| = {max(differences):.2e}")
    assert max(differences) < 1e-10


@pytest.mark.parametrize("text", [*SINGLE, SUM, PRODUCT])
def test_autograd_gradient_matches_finite_differences(study, text):
    model = study_model(study, text)
    h = 1e-5
    for u in points(model, count=3, seed=1):
        _, grad = autograd_log_joint_and_grad(model, u)
        numeric = [
            (
                autograd_log_joint_and_grad(model, u + h * e)[0]
                - autograd_log_joint_and_grad(model, u - h * e)[0]
            )
            / (2 * h)
            for e in np.eye(len(u))
        ]
        # central differences: truncation error ~h^2 times the third derivative (large in the period)
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-6)


def test_rbf_fast_path_and_autograd_agree(study):
    model = study_model(study, "rbf")
    assert model.uses_fast_path and not study_model(study, "matern52").uses_fast_path
    assert not study_model(study, "rbf + rbf").uses_fast_path
    rng = np.random.default_rng(2)
    for u in [np.array([0.7, -1.9]), np.array([0.0, 0.0]), *rng.uniform([-2, -3], [2, 0.5], (6, 2))]:
        fast_value, fast_grad = log_joint_and_grad(model, u)
        auto_value, auto_grad = autograd_log_joint_and_grad(model, u)
        assert abs(fast_value - auto_value) < 1e-10
        np.testing.assert_allclose(fast_grad, auto_grad, rtol=0, atol=1e-10)


def test_autograd_log_joint_is_minus_infinity_off_the_domain(study):
    model = study_model(study, "matern52")
    for u in ([800.0, 0.0], [0.0, -400.0], [np.nan, 0.0]):
        value, grad = autograd_log_joint_and_grad(model, np.array(u))
        assert value == -np.inf and np.all(grad == 0)
    # K + noise I not positive definite: a negative noise makes the Cholesky fail
    broken = replace(model, noise=-10.0)
    assert autograd_log_joint_and_grad(broken, np.array([0.0, 0.0]))[0] == -np.inf


def test_a_kernel_without_its_prior_is_refused(study):
    _, x, y = study
    model = study_model(study, "rbf")
    with pytest.raises(ValueError, match="no prior for its period hyperparameter"):
        GPModel(x, y, 1e-4, model.variance_prior, model.lengthscale_prior, Periodic())
    with pytest.raises(ValueError, match="no prior for its alpha"):
        GPModel(x, y, 1e-4, model.variance_prior, model.lengthscale_prior, RBF() + RationalQuadratic())


# --- the predictive with any kernel, against Pyro ------------------------------------------------


@pytest.mark.parametrize("text", ["matern52", SUM])
def test_predictive_agrees_with_pyro_gpregression(study, text, exact_pyro_distances):
    import pyro.contrib.gp as gp

    model = study_model(study, text)
    u = points(model, count=1, seed=3)[0]
    theta = dict(zip(model.parameter_names, np.exp(u), strict=True))
    x, y = model.tensors()
    pyro = pyro_kernel(model.kernel, model)
    regression = gp.models.GPRegression(
        x, y, pyro, noise=torch.tensor(model.noise, dtype=torch.float64), jitter=0.0
    ).double()
    for site, name in zip(pyro_sites(pyro), model.parameter_names, strict=True):
        *path, attribute = site.split(".")[1:]
        owner = regression.kernel
        for part in path:
            owner = getattr(owner, part)
        setattr(owner, attribute, torch.tensor(theta[name], dtype=torch.float64))
    x_new = np.linspace(-1, 1, 11)
    with torch.no_grad():
        mean, var = regression(torch.tensor(x_new), full_cov=False)
    got = predict(model, x_new, {name: np.array([value]) for name, value in theta.items()})
    np.testing.assert_allclose(got.mean[0], mean.numpy(), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(got.variance[0], var.numpy(), rtol=1e-6, atol=1e-9)
    path = sample_paths(model, np.concatenate([model.x, x_new]), theta, np.random.default_rng(0))
    np.testing.assert_allclose(path[: len(model.x)], model.y, atol=0.05)  # interpolates the data


# --- NUTS on the study's data with each kernel ---------------------------------------------------

# (chains, warm-up steps, draws per chain, maximum tree depth), 2 processes, target acceptance
# 0.8. RBF and the Matérns: r_hat <= 1.01 with margin at these sizes (largest r_hat over seeds
# 0-2: RBF 1.0042, Matérns 1.0051; at 500 draws per chain the Matérns reached 1.0098). RBF, on the
# fast path, is cheap and takes more draws for the long left tail of its lengthscale. The
# rational quadratic and periodic kernels: r_hat reported, not asserted; 5 points 0.5 apart do
# not identify a period (periods 0.5 / k fit alike: r_hat of the period ~3 at 4 x 800 draws).
NUTS_RUNS = {
    "rbf": (4, 300, 2000, 10),
    "matern12": (4, 300, 1000, 10),
    "matern32": (4, 300, 1000, 10),
    "matern52": (4, 300, 1000, 10),
    "rational_quadratic": (4, 100, 200, 10),
    "periodic": (4, 50, 50, 6),
    SUM: (4, 50, 50, 6),
}
CONVERGED = ("rbf", "matern12", "matern32", "matern52")


@pytest.mark.parametrize("text", list(NUTS_RUNS))
def test_each_kernel_samples_the_study_data(study, text, record_property):
    chains, warmup, draws, depth = NUTS_RUNS[text]
    model = study_model(study, text)
    settings = replace(
        nuts_settings(study[0].nuts),
        num_chains=chains,
        warmup_steps=warmup,
        num_samples=draws,
        max_tree_depth=depth,
        parallel_chains=2,
        target_accept_prob=0.8,
    )
    posterior = sample_posterior(model, settings)
    idata = diagnostics.to_inference_data(posterior)
    assert list(idata.posterior.data_vars) == list(model.parameter_names)
    metrics = diagnostics.summarize(idata)
    r_hat = {name: round(metrics[f"r_hat_{name}"], 4) for name in model.parameter_names}
    record_property("r_hat", json.dumps(r_hat))
    print(f"{text}: r_hat {r_hat}, divergences {metrics['divergences']}")
    assert all(np.isfinite(value) for value in r_hat.values())
    if text in CONVERGED:
        assert max(r_hat.values()) <= 1.01, r_hat


def test_inference_data_and_figures_carry_the_kernels_names(study, tmp_path: Path):
    model = study_model(study, SUM)
    rng = np.random.default_rng(0)
    samples = {name: np.exp(rng.normal(size=(2, 30))) for name in model.parameter_names}
    posterior = Posterior(samples, np.zeros((2, 30), dtype=bool), wall_time_s=0.0, processes=1)
    idata = diagnostics.to_inference_data(posterior)
    diagnostics.save_inference_data(idata, tmp_path / "posterior.nc")
    assert list(az.from_netcdf(tmp_path / "posterior.nc").posterior.data_vars) == list(model.parameter_names)
    assert "ess_bulk_periodic.period" in diagnostics.summarize(idata)
    plot_scatter(samples, tmp_path / "scatter.png")
    assert (tmp_path / "scatter.png").stat().st_size > 0


def test_the_report_shows_the_kernels_hyperparameters(raw_params, tmp_path: Path):
    from pml_ops.report.sections import gp_section

    for text, names in [("rbf", ["variance", "lengthscale"]), (SUM, list(parse_kernel(SUM).parameter_names))]:
        params = parse_params(_with(raw_params, "gp.kernel", text))
        metrics = {
            f"{stat}_{name}": 1.0
            for name in names
            for stat in ("posterior_mean", "ess_bulk", "ess_tail", "r_hat")
        }
        metrics |= {
            "divergences": 0,
            "predictive_mean_at_x_star": 0.0,
            "predictive_q025_at_x_star": -1.0,
            "predictive_q975_at_x_star": 1.0,
            "true_f_at_x_star": 0.5,
            "wall_time_s": 1.0,
        }
        path = tmp_path / params.gp.outputs.metrics
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(metrics))
        section, _ = gp_section(params, tmp_path)
        assert [row["hyperparameter"] for row in section.tables[0].rows] == names


# --- the study's numbers do not move --------------------------------------------------------------


class HandWrittenRBF:
    """The gp stage's target before kernels were objects: the hand-written numpy RBF density."""

    def __init__(self, model: GPModel):
        self.model = model

    parameter_names = ("variance", "lengthscale")

    def log_density_and_grad(self, u: np.ndarray) -> tuple[float, np.ndarray]:
        return log_joint_and_grad(self.model, u)

    def constrain(self, draws: np.ndarray) -> dict[str, np.ndarray]:
        return {name: np.exp(draws[..., i]) for i, name in enumerate(self.parameter_names)}


def test_the_default_kernel_gives_the_studys_draws_bit_for_bit(study):
    """params.yaml's default (`gp.kernel: rbf`) samples through the hand-written path: the same
    draws, bit for bit, as the stage's target before kernels, in one process and in two."""
    cfg, x, y = study
    model = gp_model(x, y, cfg.noise_variance, cfg.priors, kernel(cfg.kernel, "gp.kernel"))
    assert cfg.kernel == "rbf" and model.uses_fast_path
    for processes in (1, 2):
        settings = replace(nuts_settings(cfg.nuts), num_samples=200, parallel_chains=processes)
        new, old = sample_posterior(model, settings), sample_posterior(HandWrittenRBF(model), settings)
        for name in ("variance", "lengthscale"):
            np.testing.assert_array_equal(new.samples[name], old.samples[name])
        np.testing.assert_array_equal(new.diverging, old.diverging)
