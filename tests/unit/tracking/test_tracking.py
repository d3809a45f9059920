from __future__ import annotations

import http.server
import socket
import threading
import time
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from pml_ops.config import TrackingParams
from pml_ops.core.errors import TrackingError
from pml_ops.tracking.provenance import dvc_output_md5
from pml_ops.tracking.store import check_server, configure, resolve_uri, set_shared_tag, tracking_uri

PARAMS = TrackingParams(uri="sqlite:///mlflow.db", experiment="unit", artifact_root="mlartifacts")


def test_relative_sqlite_uri_is_anchored_in_the_project(tmp_path: Path):
    assert resolve_uri("sqlite:///mlflow.db", tmp_path) == f"sqlite:///{tmp_path}/mlflow.db"
    assert resolve_uri("sqlite:////abs/x.db", tmp_path) == "sqlite:////abs/x.db"
    assert resolve_uri("http://127.0.0.1:5000", tmp_path) == "http://127.0.0.1:5000"


def test_environment_overrides_params(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    assert tracking_uri(PARAMS, tmp_path) == "http://127.0.0.1:9"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert tracking_uri(PARAMS, tmp_path) == f"sqlite:///{tmp_path}/mlflow.db"


def test_runs_land_in_the_project_store(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    experiment_id = configure(PARAMS, tmp_path)
    with mlflow.start_run() as run:
        mlflow.log_metric("x", 1.5)
        mlflow.log_text("hello", "note.txt")
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    assert client.get_run(run.info.run_id).data.metrics == {"x": 1.5}
    assert client.get_experiment(experiment_id).artifact_location == (tmp_path / "mlartifacts").as_uri()
    assert (tmp_path / "mlartifacts" / run.info.run_id / "artifacts" / "note.txt").read_text() == "hello"
    assert configure(PARAMS, tmp_path) == experiment_id  # idempotent


def test_dvc_output_md5_reads_the_lock_file(tmp_path: Path):
    assert dvc_output_md5("data/mnist.npz", tmp_path) == "unknown"
    (tmp_path / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  prepare:\n    outs:\n    - path: data/mnist.npz\n      md5: abc\n"
    )
    assert dvc_output_md5("data/mnist.npz", tmp_path) == "abc"


def _closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_server_fails_fast_with_a_fix(monkeypatch, tmp_path: Path):
    uri = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    started = time.monotonic()
    with pytest.raises(TrackingError) as error:
        configure(PARAMS, tmp_path)
    assert time.monotonic() - started < 5
    message = str(error.value)
    assert f"MLflow tracking server {uri} is unreachable" in message
    assert "unset MLFLOW_TRACKING_URI" in message and "mlflow server" in message


def test_server_that_does_not_answer_times_out(monkeypatch):
    with socket.socket() as listener:  # accepts connections (backlog) but never replies
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        uri = f"http://127.0.0.1:{listener.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(TrackingError, match="unreachable .*timed out"):
            check_server(uri, timeout_s=0.5)
        assert time.monotonic() - started < 3


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):
        self.send_response(self.status)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args):
        pass


@pytest.mark.parametrize(("status", "reachable"), [(200, True), (401, True), (503, False)])
def test_health_answers(status: int, reachable: bool):
    handler = type("Handler", (_Health,), {"status": status})
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        uri = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            if reachable:
                check_server(uri)
            else:
                with pytest.raises(TrackingError, match="HTTP 503"):
                    check_server(uri)
        finally:
            server.shutdown()


class _RacingClient:
    """set_tag fails as the loser of an insert race does, `failures` times, then succeeds."""

    def __init__(self, failures: int, message: str) -> None:
        self.failures, self.message, self.calls = failures, message, 0

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError(self.message)


PG_RACE = (
    'BAD_REQUEST: (psycopg2.errors.UniqueViolation) duplicate key value violates unique constraint "tag_pk"'
)


def test_a_shared_tag_that_lost_an_insert_race_is_set_on_the_retry():
    client = _RacingClient(failures=1, message=PG_RACE)
    set_shared_tag(client, "run", "last_run.workers", "1")
    assert client.calls == 2
    sqlite = _RacingClient(failures=1, message="UNIQUE constraint failed: tags.key, tags.run_uuid")
    set_shared_tag(sqlite, "run", "k", "v")
    assert sqlite.calls == 2


def test_other_set_tag_errors_and_a_race_that_never_ends_are_raised():
    client = _RacingClient(failures=1, message="RESOURCE_DOES_NOT_EXIST: run 'x' not found")
    with pytest.raises(RuntimeError, match="not found"):
        set_shared_tag(client, "x", "k", "v")
    assert client.calls == 1
    endless = _RacingClient(failures=10, message=PG_RACE)
    with pytest.raises(TrackingError, match="refused the write through 3 attempts .*duplicate key"):
        set_shared_tag(endless, "run", "k", "v", attempts=3)
    assert endless.calls == 3
