"""Which density families params.yaml may name: pml-ops's own (with or without their entry points
in the installed metadata) and those of other packages' `pml_ops.families` entry points, each
section validated by its family's schema; a duplicate, broken or unknown family is a clear error."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
import tomllib

import pytest
import yaml

from pml_ops.config import density_families, parse_params, rediscover
from pml_ops.config.families import BUILTIN
from pml_ops.core.errors import ConfigError
from tests.conftest import REPO_ROOT
from tests.helpers.fake_families import declare

BUILTINS = ["vae", "cvae", "ppca", "gmm"]


@pytest.fixture(autouse=True)
def _found_again():
    rediscover()
    yield
    rediscover()  # the next test finds the real entry points (monkeypatch restores them after this)


@pytest.fixture
def raw() -> dict:
    return yaml.safe_load((REPO_ROOT / "params.yaml").read_text())


def _wide(raw: dict, section: dict | None = None) -> dict:
    """params.yaml with a model `w` of the family `wide` and its section."""
    changed = copy.deepcopy(raw)
    changed["models"]["w"] = {"family": "wide", "file": "params.yaml", "section": "wide", "base": "wide"}
    if section is not None:
        changed["wide"] = section
    return changed


def _error(raw: dict) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_params(raw)
    return str(caught.value)


def test_the_builtin_families_are_found_without_any_metadata(monkeypatch, raw):
    declare(monkeypatch)
    assert list(density_families()) == BUILTINS
    params = parse_params(raw)
    assert [name for name in type(params).model_fields] == [
        "data", "tracking", "gp", "bayesopt", "density", *BUILTINS, "evaluate", "report", "tuning", "models"
    ]  # fmt: skip


def test_pyproject_declares_exactly_the_builtin_families():
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"]["pml_ops.families"] == BUILTIN


def test_pml_ops_own_entry_points_are_the_same_families_not_duplicates(monkeypatch, raw):
    declare(monkeypatch, **BUILTIN)
    assert list(density_families()) == BUILTINS
    assert parse_params(raw).section("gmm").n_components == 10


def test_a_family_of_another_package_validates_its_own_section(monkeypatch, raw):
    declare(monkeypatch, wide="tests.helpers.fake_families:WIDE")
    assert list(density_families()) == [*BUILTINS, "wide"]
    assert "entry point 'wide = tests.helpers.fake_families:WIDE'" in density_families()["wide"].source
    params = parse_params(_wide(raw, {"width": 3}))
    assert params.section("wide").width == 3 and params.models["w"].family == "wide"
    assert pickle.loads(pickle.dumps(params)) == params  # tuning workers get params by pickle
    assert parse_params(raw).section("wide") is None  # no model uses it: its section may be absent
    assert "unknown key 'wide.depth'" in _error(_wide(raw, {"width": 3, "depth": 2}))
    assert "'wide.width': Input should be greater than 0 (got 0)" in _error(_wide(raw, {"width": 0}))
    assert _error(_wide(raw)) == "params.yaml: 1 invalid setting(s):\n  - missing key 'wide'"
    small = _wide(raw, {"width": 400})
    small["density"]["subset"]["train"] = 300
    assert _error(small).endswith("\n  - wide.width: 400 exceeds density.subset.train")
    tuned = _wide(raw, {"width": 3})
    tuned["models"]["w"]["file"] = "params_tuned.yaml"
    assert _error(tuned).endswith("\n  - models.w.file: only VAE families read a tuned section")
    override = _wide(raw, {"width": 3})
    override["models"]["w"]["architecture"] = {"decoder": "continuous_bernoulli"}
    assert _error(override).endswith("\n  - models.w.architecture: a wide model has no architecture")


def test_an_unknown_family_is_named_with_the_known_ones(monkeypatch, raw):
    raw["models"]["gmm"]["family"] = "flow"
    declare(monkeypatch)
    assert _error(raw) == (
        "params.yaml: 1 invalid setting(s):\n"
        "  - 'models.gmm.family': Input should be 'vae', 'cvae', 'ppca' or 'gmm' (got 'flow')"
    )
    declare(monkeypatch, wide="tests.helpers.fake_families:WIDE")
    assert "Input should be 'vae', 'cvae', 'ppca', 'gmm' or 'wide' (got 'flow')" in _error(raw)
    raw["wide"] = {"width": 1}
    del raw["models"]["gmm"]
    parse_params(raw)
    del raw["wide"]
    declare(monkeypatch)  # the package that declared `wide` is gone: its section is an unknown key
    parse_params(raw)


def test_errors_keep_the_order_of_the_sections(raw):
    del raw["gmm"]
    raw["evaluate"]["grid_size"] = 0
    raw["vae"]["training"]["epochs"] = "2"
    assert _error(raw) == (
        "params.yaml: 3 invalid setting(s):\n"
        "  - 'vae.training.epochs': Input should be a valid integer (got '2')\n"
        "  - missing key 'gmm'\n"
        "  - 'evaluate.grid_size': Input should be greater than 0 (got 0)"
    )


def test_a_name_declared_twice_is_refused_naming_both(monkeypatch, raw):
    declare(monkeypatch, vae="tests.helpers.fake_families:VAE_TWIN")
    assert _error(raw) == (
        "density family 'vae' is declared twice: by pml-ops's own families "
        "(pml_ops.density.models.vae:vae) and by entry point "
        "'vae = tests.helpers.fake_families:VAE_TWIN' of an unknown distribution "
        "(group pml_ops.families); uninstall one of them or give one another name"
    )


FAKES = "tests.helpers.fake_families"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("fa", "no_such_package:fa", r"cannot be loaded \(ModuleNotFoundError: No module named 'no_such_"),
        ("wide", f"{FAKES}:MISNAMED", r"the object's name is 'narrow', not 'wide'"),
        ("loose", f"{FAKES}:NOT_A_SECTION", r"must be a subclass of pml_ops.config.Section"),
        ("density", f"{FAKES}:RESERVED", r"not a usable section name of params.yaml"),
    ],
)
def test_a_broken_or_unusable_family_is_refused(monkeypatch, raw, name, value, message):
    declare(monkeypatch, **{name: value})
    with pytest.raises(ConfigError, match=rf"^density family '{name}' from entry point .*{message}"):
        parse_params(raw)


def test_validating_params_imports_no_torch_mlflow_or_sklearn():
    script = (
        "import sys\n"
        "from pml_ops.config import load_params\n"
        "load_params()\n"
        "heavy = {'torch', 'mlflow', 'sklearn', 'matplotlib'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, check=True)
