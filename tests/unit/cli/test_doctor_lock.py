"""`pml-ops doctor`'s packages check: the installed distributions against the lock."""

from __future__ import annotations

from pathlib import Path

from pml_ops.cli.doctor import Status, check_lock
from pml_ops.tracking.provenance import DEV_LOCK, RUNTIME_LOCK


def _project(tmp_path: Path, runtime: str, dev: str | None = None) -> Path:
    (tmp_path / "requirements").mkdir()
    (tmp_path / RUNTIME_LOCK).write_text(runtime)
    if dev is not None:
        (tmp_path / DEV_LOCK).write_text(dev)
    return tmp_path


def test_an_environment_as_locked_passes(tmp_path: Path):
    project = _project(tmp_path, "numpy==2.4.6 \\\n    --hash=sha256:00\ntorch==2.13.0+cpu\n")
    check = check_lock(project, {"numpy": "2.4.6", "torch": "2.13.0+cpu", "extra": "1.0"})
    assert check.status is Status.OK
    assert check.detail == f"the 2 packages of {RUNTIME_LOCK} at their locked versions"


def test_differences_are_a_warning_that_names_them_and_the_fix(tmp_path: Path):
    runtime = "".join(f"pkg{i}==1.{i}\n" for i in range(7))
    check = check_lock(_project(tmp_path, runtime), {"pkg0": "1.0", "pkg1": "2.0"})
    assert check.status is Status.WARN
    assert check.detail.startswith(f"6 of 7 differ from {RUNTIME_LOCK}: pkg1 2.0 (locked 1.1), pkg2 missing")
    assert check.detail.endswith("and 1 more")
    assert "make install" in check.fix and "fix: run `make install`" in check.render()


def test_a_dev_environment_is_held_to_the_dev_lock(tmp_path: Path):
    project = _project(tmp_path, "numpy==2.4.6\n", dev="numpy==2.4.6\npytest==9.2.0\nruff==0.17.6\n")
    runtime_only = check_lock(project, {"numpy": "2.4.6"})  # the images: no dev tool installed
    assert runtime_only.status is Status.OK and RUNTIME_LOCK in runtime_only.detail
    dev = check_lock(project, {"numpy": "2.4.6", "pytest": "9.2.0"})
    assert (
        dev.status is Status.WARN
        and dev.detail == f"1 of 3 differ from {DEV_LOCK}: ruff missing (locked 0.17.6)"
    )


def test_another_build_of_the_locked_torch_is_named_but_passes(tmp_path: Path):
    check = check_lock(_project(tmp_path, "torch==2.13.0+cpu\n"), {"torch": "2.13.0"})
    assert check.status is Status.OK and "torch 2.13.0: another build of 2.13.0+cpu" in check.detail


def test_no_lock_file_is_a_warning(tmp_path: Path):
    check = check_lock(tmp_path, {})
    assert check.status is Status.WARN and RUNTIME_LOCK in check.detail


def test_this_environment_matches_the_lock():
    """The tests run in an environment made by scripts/install.sh from this checkout's lock."""
    from tests.conftest import REPO_ROOT

    check = check_lock(REPO_ROOT)
    assert check.status is Status.OK, check.render()
