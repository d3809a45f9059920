from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from pml_ops.cli.main import main
from tests.conftest import REPO_ROOT, VENV_BIN


def test_help_lists_commands():
    result = subprocess.run([str(VENV_BIN / "pml-ops"), "--help"], capture_output=True, text=True, check=True)
    assert "validate" in result.stdout and "ui" in result.stdout


def test_validate_ok_and_bad(tmp_path, capsys):
    assert main(["--params", str(REPO_ROOT / "params.yaml"), "validate"]) == 0
    bad = tmp_path / "params.yaml"
    bad.write_text((REPO_ROOT / "params.yaml").read_text().replace("timeout_s: 30.0", "timeout_s: 0"))
    assert main(["--params", str(bad), "validate"]) == 2
    assert "'data.timeout_s': Input should be greater than 0" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["validate", "doctor", "ui", "remote"])
def test_every_command_has_a_helpful_help(command: str):
    result = subprocess.run(
        [sys.executable, "-m", "pml_ops.cli.main", command, "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.startswith(f"usage: pml-ops {command}")
    description = result.stdout.split("\n\n")[1]
    assert len(description.split()) >= 15, f"`{command} --help` explains too little:\n{result.stdout}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status, response.read()


def test_ui_serves_the_project_store_on_localhost_only(tmp_path: Path):
    shutil.copy(REPO_ROOT / "params.yaml", tmp_path / "params.yaml")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("MLFLOW_TRACKING_URI", None)
    port = _free_port()
    ui = subprocess.Popen(
        [sys.executable, "-m", "pml_ops.cli.main", "ui", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # mlflow starts workers: end the whole group
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                status, body = _get(f"http://127.0.0.1:{port}/health")
                break
            except OSError:
                assert ui.poll() is None, ui.stdout.read().decode()
                assert time.monotonic() < deadline, "MLflow UI did not answer within 90 s"
                time.sleep(0.5)
        assert (status, body) == (200, b"OK")
        _, experiments = _get(
            f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/experiments/search?max_results=10"
        )
        assert [e["name"] for e in json.loads(experiments)["experiments"]] == ["Default"]
        assert (tmp_path / "mlflow.db").is_file()  # the store from params.yaml, in the project
        listening = {
            conn.laddr.ip
            for conn in psutil.net_connections(kind="inet")
            if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port
        }
        assert listening == {"127.0.0.1"}
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        try:
            ui.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(ui.pid, signal.SIGKILL)
            ui.wait()


def test_ui_refuses_a_busy_port(tmp_path: Path, capsys):
    shutil.copy(REPO_ROOT / "params.yaml", tmp_path / "params.yaml")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        assert main(["--params", str(tmp_path / "params.yaml"), "ui", "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
