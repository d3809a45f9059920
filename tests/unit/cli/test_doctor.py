"""`pml-ops doctor`: each check on healthy and broken inputs, and the command end to end."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from pml_ops.cli.doctor import Status, check_data, check_dvc, check_python, check_tracking
from pml_ops.config import load_params
from tests.conftest import REPO_ROOT, run


def test_python_version_check():
    assert check_python().status is Status.OK
    old = check_python((3, 10, 4))
    assert old.status is Status.FAIL and "3.10.4 is too old" in old.detail and "3.11" in old.fix


def test_unreachable_tracking_server_is_a_failure_with_a_fix():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    check = check_tracking(f"http://127.0.0.1:{port}")
    assert check.status is Status.FAIL
    assert f"http://127.0.0.1:{port} is unreachable" in check.detail
    assert "unset MLFLOW_TRACKING_URI" in check.fix
    assert "fix: " in check.render()


def test_sqlite_store_checks(tmp_path: Path):
    assert check_tracking(f"sqlite:///{tmp_path}/new.db").status is Status.OK
    assert check_tracking(f"sqlite:///{tmp_path}/missing/dir/x.db").status is Status.FAIL
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    broken = check_tracking(f"sqlite:///{junk}")
    assert broken.status is Status.FAIL and "unusable" in broken.detail and "move" in broken.fix


def test_data_missing_is_a_warning_and_corrupt_data_a_failure(tmp_path: Path):
    params = load_params(REPO_ROOT / "params.yaml")
    missing = check_data(tmp_path, params)
    assert missing.status is Status.WARN and "dvc repro prepare" in missing.fix
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mnist.npz").write_bytes(b"PK\x03\x04 truncated")
    corrupt = check_data(tmp_path, params)
    assert corrupt.status is Status.FAIL and "unreadable dataset artifact" in corrupt.detail


def test_dvc_checks(tmp_path: Path):
    assert check_dvc(tmp_path).status is Status.FAIL  # not a DVC repository
    run(["git", "init", "-q"], tmp_path)
    run([sys.executable, "-m", "dvc", "init", "-q"], tmp_path)
    no_remote = check_dvc(tmp_path)
    assert no_remote.status is Status.WARN and "dvc remote add -d" in no_remote.fix
    storage = tmp_path / "storage"
    storage.mkdir()
    run([sys.executable, "-m", "dvc", "remote", "add", "-d", "store", str(storage)], tmp_path)
    assert check_dvc(tmp_path).status is Status.OK


def _doctor(clone: Path, env: dict[str, str]):
    return run([sys.executable, "-m", "pml_ops.cli.main", "doctor"], clone, env, check=False)


@pytest.mark.e2e
def test_doctor_end_to_end(temp_clone: Path, stage_env: dict[str, str]):
    fresh = _doctor(temp_clone, stage_env)
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr  # no data yet is only a warning
    assert "! data: data/mnist.npz not present yet" in fresh.stdout

    run(["dvc", "repro", "prepare"], temp_clone, stage_env)
    healthy = _doctor(temp_clone, stage_env)
    assert healthy.returncode == 0, healthy.stdout
    lines = [line for line in healthy.stdout.splitlines() if line[:2] in ("✓ ", "! ", "✗ ")]
    assert [line.split(":")[0] for line in lines] == [
        "✓ python", "✓ torch", "✓ packages", "✓ params", "✓ mlflow store", "✓ dvc", "✓ data"
    ]  # fmt: skip
    assert "60000 train, 10000 test" in healthy.stdout

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = _doctor(temp_clone, {**stage_env, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"})
    assert down.returncode == 1
    assert "✗ mlflow store" in down.stdout and "1 problem(s): mlflow store" in down.stdout

    params = temp_clone / "params.yaml"
    params.write_text(params.read_text().replace("retries: 2", "retries: -1"))
    bad = _doctor(temp_clone, stage_env)
    assert bad.returncode == 1
    assert "✗ params" in bad.stdout and "'data.retries'" in bad.stdout and "pml-ops validate" in bad.stdout
