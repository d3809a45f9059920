"""Reliability under interruption: a stage killed with SIGKILL mid-run leaves no partial output,
and the next `dvc repro` completes; a second `dvc repro` then does nothing."""

from __future__ import annotations

import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pml_ops.core.io import atomic_path, remove_stale_temporaries
from pml_ops.data.mnist import MIRROR_ENV, load_mnist
from tests.conftest import REPO_ROOT, run
from tests.helpers.interrupt import files_under, kill_when


class SlowMirror(http.server.ThreadingHTTPServer):
    """Serves a directory on 127.0.0.1, trickling each file out slowly; counts bytes sent."""

    def __init__(self, directory: Path, chunk: int = 16384, pause_s: float = 0.05) -> None:
        self.directory, self.chunk, self.pause_s = directory, chunk, pause_s
        self.bytes_sent = 0
        super().__init__(("127.0.0.1", 0), _TrickleHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


class _TrickleHandler(http.server.BaseHTTPRequestHandler):
    server: SlowMirror

    def do_GET(self) -> None:
        path = self.server.directory / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        blob = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(blob)))
        self.end_headers()
        try:
            for start in range(0, len(blob), self.server.chunk):
                self.wfile.write(blob[start : start + self.server.chunk])
                self.server.bytes_sent += self.server.chunk
                time.sleep(self.server.pause_s)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client was killed: expected

    def log_message(self, *args) -> None:
        pass


@pytest.mark.e2e
def test_prepare_killed_mid_download_leaves_nothing_and_repro_recovers(temp_clone, stage_env, mnist_mirror):
    before = files_under(temp_clone / "data")
    with SlowMirror(mnist_mirror) as mirror:
        threading.Thread(target=mirror.serve_forever, daemon=True).start()
        env = {**stage_env, MIRROR_ENV: mirror.url}
        try:
            kill_when(
                ["dvc", "repro", "prepare"], temp_clone, env, ready=lambda: mirror.bytes_sent > 256 * 1024
            )
        finally:
            mirror.shutdown()

    assert not (temp_clone / "data" / "mnist.npz").exists()
    assert files_under(temp_clone / "data") == before  # no partial artifact, no temporaries

    first = run(["dvc", "repro", "prepare"], temp_clone, stage_env)  # stale DVC locks do not block
    assert "Running stage 'prepare'" in first.stdout
    assert load_mnist(temp_clone / "data" / "mnist.npz").x_train.shape == (60000, 28, 28)

    second = run(["dvc", "repro", "prepare"], temp_clone, stage_env)
    assert "Running stage" not in second.stdout
    status = run(["dvc", "status", "prepare"], temp_clone, stage_env).stdout
    assert "Data and pipelines are up to date." in status


WRITER = """
import os, signal, sys
from pml_ops.core.io import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"half of an artifact")
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_writer_killed_mid_write_leaves_no_output_and_its_temporary_is_swept(tmp_path: Path):
    target = tmp_path / "out" / "model.pt"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    killed = subprocess.run([sys.executable, "-c", WRITER, str(target)], env=env, capture_output=True)
    assert killed.returncode == -signal.SIGKILL
    assert not target.exists()
    leftovers = list(target.parent.iterdir())
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".model.pt.")  # killed before cleanup

    live = target.parent / f".model.pt.{os.getpid()}.x.tmp"  # a writer still at work: kept
    live.write_bytes(b"in progress")
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"complete")
    assert target.read_bytes() == b"complete"
    assert sorted(p.name for p in target.parent.iterdir()) == sorted([live.name, "model.pt"])
    assert remove_stale_temporaries(target) == []
