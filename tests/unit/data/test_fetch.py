"""Mirror fetching: directories, file:// URLs and HTTP against a local server (no internet)."""

from __future__ import annotations

import functools
import http.server
import os
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from pml_ops.core.errors import DataError, DownloadError
from pml_ops.data.mnist import MIRROR_ENV, fetch_mnist, load_mnist, mirror_list, save_mnist
from tests.conftest import synthetic_files


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture
def http_mirrors(tmp_path: Path):
    """One HTTP server with three mirrors below it: good/, corrupt/ and empty/ (404s)."""
    specs, blobs, arrays = synthetic_files()
    for folder in ("good", "corrupt", "empty"):
        (tmp_path / folder).mkdir()
    for name, blob in blobs.items():
        (tmp_path / "good" / name).write_bytes(blob)
        (tmp_path / "corrupt" / name).write_bytes(blob[: len(blob) // 2])
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    yield base, specs, arrays
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _assert_same(data, arrays):
    for key, array in arrays.items():
        np.testing.assert_array_equal(getattr(data, key), array)


def test_http_download_of_good_files(http_mirrors):
    base, specs, arrays = http_mirrors
    data = fetch_mnist([f"{base}/good/"], timeout_s=5, retries=0, files=specs)
    _assert_same(data, arrays)


def test_falls_through_missing_and_corrupt_mirrors(http_mirrors):
    base, specs, arrays = http_mirrors
    mirrors = [f"{base}/empty/", f"{base}/corrupt/", f"{base}/good/"]
    data = fetch_mnist(mirrors, timeout_s=5, retries=0, files=specs)
    _assert_same(data, arrays)


def test_every_mirror_failing_lists_what_was_tried_and_why(http_mirrors):
    base, specs, _ = http_mirrors
    dead = f"http://127.0.0.1:{_closed_port()}/"
    mirrors = [f"{base}/empty/", f"{base}/corrupt/", dead]
    with pytest.raises(DownloadError) as caught:
        fetch_mnist(mirrors, timeout_s=5, retries=0, files=specs)
    message = str(caught.value)
    assert "could not obtain a valid copy of synthetic-x_train.gz; tried:" in message
    assert f"{base}/empty/: HTTP 404" in message
    assert f"{base}/corrupt/: synthetic-x_train.gz: corrupt or truncated gzip" in message
    assert f"{dead}: unreachable" in message


def test_checksum_mismatch_from_a_mirror_is_reported(tmp_path: Path):
    specs, blobs, _ = synthetic_files(seed=0)
    _, other_blobs, _ = synthetic_files(seed=1)  # same names, different content
    for name in blobs:
        (tmp_path / name).write_bytes(other_blobs[name])
    with pytest.raises(DownloadError, match="checksum mismatch: expected sha256 [0-9a-f]{64}, got"):
        fetch_mnist([str(tmp_path)], files=specs)


def test_directory_and_file_url_mirrors(synthetic_mirror):
    mirror, specs, arrays = synthetic_mirror
    _assert_same(fetch_mnist([str(mirror)], files=specs), arrays)
    _assert_same(fetch_mnist([mirror.as_uri()], files=specs), arrays)


def test_missing_local_file_is_reported(tmp_path: Path):
    specs, _, _ = synthetic_files()
    with pytest.raises(DownloadError, match="no such file"):
        fetch_mnist([str(tmp_path)], files=specs)


def test_local_mirror_variable_is_tried_first():
    env = {MIRROR_ENV: "/data/mnist"}
    assert mirror_list(["https://a/", "https://b/"], env) == [
        "/data/mnist",
        "https://a/",
        "https://b/",
    ]
    assert mirror_list(["https://a/"], {}) == ["https://a/"]


def test_real_mnist_from_offline_mirror(mnist_mirror: Path, tmp_path: Path):
    data = fetch_mnist([str(mnist_mirror)])
    assert np.bincount(data.y_train).tolist() == [
        5923,
        6742,
        5958,
        6131,
        5842,
        5421,
        5918,
        6265,
        5851,
        5949,
    ]
    assert np.bincount(data.y_test).tolist() == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]
    save_mnist(data, tmp_path / "mnist.npz")
    loaded = load_mnist(tmp_path / "mnist.npz")
    np.testing.assert_array_equal(loaded.x_test, data.x_test)


def test_load_reports_missing_and_unreadable_artifacts(tmp_path: Path):
    with pytest.raises(DataError, match="dataset not found; run `dvc repro prepare` first"):
        load_mnist(tmp_path / "absent.npz")
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    unreadable = r"unreadable dataset artifact \(.*\); rebuild it with `dvc repro -f prepare`"
    with pytest.raises(DataError, match=unreadable):
        load_mnist(tmp_path / "bad.npz")


def test_failed_write_leaves_no_partial_artifact(synthetic_mirror, tmp_path: Path, monkeypatch):
    mirror, specs, _ = synthetic_mirror
    data = fetch_mnist([str(mirror)], files=specs)
    target = tmp_path / "out" / "mnist.npz"

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", explode)
    with pytest.raises(OSError, match="disk full"):
        save_mnist(data, target)
    assert list(target.parent.iterdir()) == []


def test_atomic_writes_get_normal_permissions(tmp_path: Path):
    import os

    from pml_ops.core.io import write_json

    mask = os.umask(0o022)
    try:
        write_json(tmp_path / "m.json", {"a": 1})
    finally:
        os.umask(mask)
    assert (tmp_path / "m.json").stat().st_mode & 0o777 == 0o644


FASHION = Path("/usr/share/datasets/fashion-mnist")


def test_fashion_mnist_from_debians_package_matches_its_pinned_checksums(tmp_path):
    """Debian's dataset-fashion-mnist (installed by .ci/run) verifies against the pinned checksums;
    the same files are refused as MNIST, and an MNIST artifact is refused for fashion-mnist."""
    from pml_ops.data.mnist import DATASETS

    if not (FASHION / "train-images-idx3-ubyte.gz").is_file():
        message = f"{FASHION}: install Debian's dataset-fashion-mnist"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    spec = DATASETS["fashion-mnist"]
    data = fetch_mnist([str(FASHION)], files=spec.files)
    assert data.x_train.shape == (60000, 28, 28) and np.bincount(data.y_test).tolist() == [1000] * 10
    assert spec.class_names[9] == "Ankle boot"
    with pytest.raises(DownloadError, match="checksum mismatch"):
        fetch_mnist([str(FASHION)], files={"y_test": DATASETS["mnist"].files["y_test"]})
    save_mnist(data, tmp_path / "f.npz", "fashion-mnist")
    assert load_mnist(tmp_path / "f.npz", "fashion-mnist").y_test.shape == (10000,)
    with pytest.raises(DataError, match="holds fashion-mnist, but data.dataset is mnist"):
        load_mnist(tmp_path / "f.npz", "mnist")
