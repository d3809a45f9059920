"""The shared MLflow server, started exactly as the compose service starts it (the image's entry
point with `mlflow-server`, i.e. docker/mlflow-server.sh) on a PostgreSQL backend store, accepts
the runs of a stage and serves them back, artifacts through the server's proxy.

The stage is a subprocess that talks to the server only through MLFLOW_TRACKING_URI, as a
pipeline container does. To check a real stage once one logs to MLflow, replace STAGE_COMMAND
(e.g. ["dvc", "repro", "vae"] run in a temporary clone) and the EXPECTED_* values below it.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.conftest import REPO_ROOT, VENV_BIN, run
from tests.helpers.postgres import fresh_database

pytestmark = pytest.mark.e2e

COMPOSE_FILE = REPO_ROOT / "docker" / "compose.yaml"

# A minimal stage: the real tracking set-up (pml_ops.tracking.store.configure on params.yaml), then
# params, a metric history and two artifacts (text and binary).
STAGE_SCRIPT = """
import os, sys
import mlflow
from pml_ops.config import load_params
from pml_ops.tracking.store import configure

configure(load_params("params.yaml").tracking)
with mlflow.start_run(run_name="server-smoke") as run:
    mlflow.log_params({"epochs": 1, "latent_dim": 2})
    for step, loss in enumerate([3.0, 2.0, 1.5]):
        mlflow.log_metric("loss", loss, step=step)
    mlflow.log_text("reconstructions of chosen test digits\\n", "figures/notes.txt")
    with open("weights.bin", "wb") as file:
        file.write(bytes(range(256)) * 64)
    mlflow.log_artifact("weights.bin", "model")
"""
STAGE_COMMAND = [sys.executable, "-c", STAGE_SCRIPT]
# What that stage logs; a real stage's command comes with its own expectations.
EXPECTED_PARAMS = {"epochs": "1", "latent_dim": "2"}
EXPECTED_METRICS = {"loss": [(0, 3.0), (1, 2.0), (2, 1.5)]}
EXPECTED_ARTIFACTS = {
    "figures/notes.txt": b"reconstructions of chosen test digits\n",
    "model/weights.bin": bytes(range(256)) * 64,
}


def compose_mlflow_environment() -> dict[str, str]:
    """The compose file's environment for the `mlflow` service, `${VAR:-default}` resolved to the
    default (the value a fresh docker/.env.example gives)."""
    service = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["mlflow"]
    assert service["command"] == ["mlflow-server"]
    resolved = {}
    for key, value in service["environment"].items():
        resolved[key] = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))
    return resolved


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_database() -> Iterator[str]:
    """A new, empty database on the local PostgreSQL server, dropped afterwards; yields its URL."""
    with fresh_database() as url:
        yield url


def wait_until_healthy(url: str, server: subprocess.Popen, log: Path, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"mlflow server exited ({server.returncode}):\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"mlflow server not healthy after {timeout_s} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def mlflow_server(postgres_database: str, tmp_path_factory) -> Iterator[dict[str, object]]:
    """The server as compose runs it, bound to 127.0.0.1 on a free port, one worker."""
    tmp_path = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    artifacts = tmp_path / "server-artifacts"
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)
    env.update(compose_mlflow_environment())
    env.update(
        # The driver psycopg2-binary provides (a dependency); plain postgresql:// picks psycopg 3
        # in SQLAlchemy 2.1, which is not installed.
        MLFLOW_BACKEND_STORE_URI=postgres_database.replace("postgresql://", "postgresql+psycopg2://", 1),
        MLFLOW_ARTIFACTS_DESTINATION=str(artifacts),
        MLFLOW_HOST="127.0.0.1",
        MLFLOW_PORT=str(port),
        MLFLOW_WORKERS="1",
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    log = tmp_path / "mlflow-server.log"
    workdir = tmp_path / "server-cwd"
    workdir.mkdir()
    with log.open("w") as log_file:
        server = subprocess.Popen(
            ["bash", str(REPO_ROOT / "docker" / "entrypoint.sh"), "mlflow-server"],
            cwd=workdir,  # the entry point runs from the project directory wherever it starts
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the server's workers join this process group
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, server, log)
        yield {"url": url, "port": port, "artifacts": artifacts, "database": postgres_database}
        assert not any(workdir.iterdir())
    finally:
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        except ProcessLookupError:
            pass


def test_server_accepts_a_stages_runs_and_serves_them_back(mlflow_server, tmp_path: Path):
    url = str(mlflow_server["url"])
    project = tmp_path / "project"
    project.mkdir()
    (project / "params.yaml").write_text((REPO_ROOT / "params.yaml").read_text())
    run(STAGE_COMMAND, project, dict(os.environ, MLFLOW_TRACKING_URI=url, PYTHONPATH=str(REPO_ROOT)))

    client = MlflowClient(tracking_uri=url)
    experiment = client.get_experiment_by_name("pml-ops")
    assert experiment is not None
    assert experiment.artifact_location.startswith("mlflow-artifacts:")  # proxied, not a client path
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.status for r in runs] == ["FINISHED"]
    run_id = runs[0].info.run_id
    assert EXPECTED_PARAMS.items() <= client.get_run(run_id).data.params.items()
    for name, expected in EXPECTED_METRICS.items():
        history = sorted(client.get_metric_history(run_id, name), key=lambda metric: metric.step)
        assert [(metric.step, metric.value) for metric in history] == expected

    # Artifacts come back through the server's proxy, byte for byte ...
    downloaded = Path(client.download_artifacts(run_id, "", str(tmp_path / "download")))
    store = Path(mlflow_server["artifacts"])
    for path, content in EXPECTED_ARTIFACTS.items():
        assert (downloaded / path).read_bytes() == content
        # ... and live in the server's artifact store, not in the client's directory.
        assert (store / experiment.experiment_id / run_id / "artifacts" / path).read_bytes() == content
    assert not (project / "mlartifacts").exists() and not (project / "mlflow.db").exists()

    # The run is in the PostgreSQL backend store.
    import psycopg2

    with psycopg2.connect(str(mlflow_server["database"])) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT run_uuid, status FROM runs")
        assert cursor.fetchall() == [(run_id, "FINISHED")]


def test_server_answers_the_compose_host_name_and_refuses_unknown_hosts(mlflow_server):
    """Inside the compose network clients reach the server as `mlflow:5000`; MLflow's
    DNS-rebinding protection must let that name through (MLFLOW_ALLOWED_HOSTS) and no other."""
    port = mlflow_server["port"]
    path = "/api/2.0/mlflow/experiments/search?max_results=1"

    def status(host: str) -> int:
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": host})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    assert status("mlflow:5000") == 200
    assert status(f"127.0.0.1:{port}") == 200
    assert status("attacker.example:5000") == 403
