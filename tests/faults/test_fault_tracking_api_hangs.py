"""Fault: a tracking server whose /health answers while its REST API hangs (a stuck backend
store). Every stage used to wait through MLflow's retries (96 s) and end in a traceback; now
the preflight asks the API too and stops within seconds with a message."""

from __future__ import annotations

import http.server
import threading
import time

import pytest

from pml_ops.config import TrackingParams
from pml_ops.core.errors import TrackingError
from pml_ops.tracking.store import configure


class _HealthyButStuck(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"OK")
            return
        time.sleep(60)  # the API never answers in time

    def log_message(self, *args):
        pass


def test_server_whose_api_hangs_is_reported_within_seconds(monkeypatch, tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HealthyButStuck)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    uri = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    started = time.monotonic()
    try:
        with pytest.raises(TrackingError) as error:
            configure(TrackingParams(uri="sqlite:///mlflow.db", experiment="e", artifact_root="a"), tmp_path)
    finally:
        server.shutdown()
        server.server_close()
    assert time.monotonic() - started < 15  # API_TIMEOUT_S (10 s), not MLflow's 96 s
    assert f"MLflow tracking server {uri} answers /health but its API does not" in str(error.value)
    assert "timed out" in str(error.value)
