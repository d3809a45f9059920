"""The lock (requirements/*.txt, scripts/lock.sh): it covers pyproject.toml, every pin is hashed,
torch is the CPU build, the install paths use it, and runs and reports record its digest."""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from pml_ops.config import load_params
from pml_ops.report.environment import collect_environment
from pml_ops.tracking.provenance import (
    DEV_LOCK,
    LOCK_DIGEST_TAG,
    RUNTIME_LOCK,
    LockDifference,
    lock_differences,
    lock_digest,
    locked_versions,
    normalize_name,
)
from tests.conftest import REPO_ROOT

PROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
RUNTIME = locked_versions(REPO_ROOT / RUNTIME_LOCK)
DEV = locked_versions(REPO_ROOT / DEV_LOCK)


def _entries(lock: str) -> dict[str, list[str]]:
    """name -> the hashes of its pin, from a lock file's `name==version \\ --hash=...` blocks."""
    entries: dict[str, list[str]] = {}
    name = None
    for line in (REPO_ROOT / lock).read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", line):
            name = normalize_name(match[1])
            entries[name] = []
        elif name and (match := re.match(r"^\s+--hash=sha256:([0-9a-f]{64})", line)):
            entries[name].append(match[1])
        elif not line.startswith(" "):
            name = None
    return entries


@pytest.mark.parametrize(
    ("lock", "requirements"),
    [
        (RUNTIME_LOCK, PROJECT["dependencies"]),
        (DEV_LOCK, PROJECT["dependencies"] + PROJECT["optional-dependencies"]["dev"]),
    ],
)
def test_the_lock_satisfies_pyproject(lock: str, requirements: list[str]):
    """A dependency added or changed in pyproject.toml without `make lock` fails here."""
    pins = locked_versions(REPO_ROOT / lock)
    for text in requirements:
        requirement = Requirement(text)
        name = normalize_name(requirement.name)
        assert name in pins, f"{name} is not in {lock}: run `make lock`"
        version = Version(pins[name])
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{lock} pins {name} {version}, outside pyproject.toml's {requirement}: run `make lock`"
        )


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, DEV_LOCK])
def test_every_pin_is_exact_and_hashed_and_torch_is_the_cpu_build(lock: str):
    entries = _entries(lock)
    assert entries.keys() == locked_versions(REPO_ROOT / lock).keys()
    assert all(entries.values()), [name for name, hashes in entries.items() if not hashes]
    assert locked_versions(REPO_ROOT / lock)["torch"].endswith("+cpu")
    assert not [name for name in entries if name.startswith("nvidia-") or name == "triton"]
    # The build backend and the installer are locked too: the project is built from the venv.
    assert {"setuptools", "pip"} <= entries.keys()
    assert "pml-ops" not in entries


def test_torch_is_the_release_the_constraints_name():
    constraints = (REPO_ROOT / "requirements" / "constraints.txt").read_text()
    assert f"torch=={RUNTIME['torch']}\n" in constraints


def test_runtime_and_dev_locks_agree():
    assert RUNTIME.keys() <= DEV.keys()
    assert {name: DEV[name] for name in RUNTIME} == RUNTIME
    assert {"pytest", "ruff", "uv", "pip-audit"} <= DEV.keys() - RUNTIME.keys()


def test_install_paths_use_the_lock_with_hashes():
    install = (REPO_ROOT / "scripts" / "install.sh").read_text()
    assert '"${pip[@]}" install -q --require-hashes --no-deps' in install
    assert '"${pip[@]}" install -q --no-deps --no-build-isolation "${project[@]}"' in install
    assert 'decides=("$lock" scripts/install.sh)' in install  # the stamp covers the lock
    dockerfile = (REPO_ROOT / "docker" / "Dockerfile").read_text()
    assert "COPY requirements/ requirements/" in dockerfile
    assert dockerfile.index("COPY requirements/") < dockerfile.index(
        "PML_OPS_DEPS_ONLY=1 bash scripts/install.sh"
    )
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert re.search(r"^lock:\n\tVENV=\$\(VENV\) bash scripts/lock.sh", makefile, re.M)
    assert re.search(r"^lint: lint-audit$", makefile, re.M)


def test_lock_digest_is_the_sha256_of_the_runtime_lock(tmp_path: Path, monkeypatch):
    assert lock_digest(tmp_path) == "unknown"
    lock = tmp_path / RUNTIME_LOCK
    lock.parent.mkdir()
    lock.write_text("NumPy==2.4.6 \\\n    --hash=sha256:" + "0" * 64 + "\n    # via pml-ops\n")
    assert lock_digest(tmp_path) == hashlib.sha256(lock.read_bytes()).hexdigest()
    assert locked_versions(lock) == {"numpy": "2.4.6"}
    monkeypatch.chdir(tmp_path)  # by default, the lock of the working directory
    assert lock_digest() == lock_digest(tmp_path)


def test_lock_differences_name_missing_other_versions_and_other_builds():
    locked = {"numpy": "2.4.6", "torch": "2.13.0+cpu", "scipy": "1.17.1", "six": "1.17.0", "a": "1.0"}
    installed = {"numpy": "2.4.6", "torch": "2.13.0", "scipy": "1.16.0", "a": "1.0.0"}
    differences = lock_differences(locked, installed)
    assert differences == [
        LockDifference("scipy", "1.17.1", "1.16.0"),
        LockDifference("six", "1.17.0", None),
        LockDifference("torch", "2.13.0+cpu", "2.13.0"),
    ]
    assert [d.other_build_only for d in differences] == [False, False, True]
    assert str(differences[1]) == "six missing (locked 1.17.0)"


def test_stage_runs_are_tagged_with_the_lock_digest(tmp_path: Path, monkeypatch):
    from mlflow.tracking import MlflowClient

    from pml_ops.tracking.run_group import tracked_stage

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "requirements").mkdir()
    (tmp_path / RUNTIME_LOCK).write_text("torch==2.13.0+cpu\n")
    params = load_params(REPO_ROOT / "params.yaml")
    with tracked_stage(params, "unit", {"pml_ops.runtime.stage": "unit"}) as run:
        run_id = run.info.run_id
    tags = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(run_id).data.tags
    assert tags[LOCK_DIGEST_TAG] == hashlib.sha256(b"torch==2.13.0+cpu\n").hexdigest()


def test_report_environment_names_the_lock_and_whether_it_is_installed(tmp_path: Path):
    (tmp_path / "requirements").mkdir()
    lock = tmp_path / RUNTIME_LOCK
    lock.write_text((REPO_ROOT / RUNTIME_LOCK).read_text())
    environment = collect_environment(tmp_path)
    assert environment[f"lock ({RUNTIME_LOCK}) sha256"] == hashlib.sha256(lock.read_bytes()).hexdigest()
    # The tests run in an environment made by scripts/install.sh from this lock.
    assert environment["installed packages"] == f"as locked ({len(RUNTIME)} packages)", "make install"
    lock.write_text("numpy==0.0.1\n")
    assert collect_environment(tmp_path)["installed packages"] == (
        f"1 of 1 differ from the lock: numpy {RUNTIME['numpy']} (locked 0.0.1)"
    )
