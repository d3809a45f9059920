"""Fault: a gzip bomb as a local mirror file. Decompression used to inflate it whole (3.97 GB
for MNIST) before the checksum refused it; now it streams and stops at the expected size."""

from __future__ import annotations

import gzip
import tracemalloc

import pytest

from pml_ops.core.errors import DataError, DownloadError
from pml_ops.data.idx import gunzip
from pml_ops.data.mnist import FILES, fetch_mnist

BOMB_BYTES = 64 * 1024 * 1024  # inflates to 64 MiB; the expected file is 166 bytes


def test_gzip_bomb_in_a_local_mirror_is_refused_without_growing_memory(synthetic_mirror):
    mirror, specs, _ = synthetic_mirror
    spec = specs["x_train"]
    assert spec.raw_size == 4 + 4 * 3 + 6 * 5 * 5
    (mirror / spec.filename).write_bytes(gzip.compress(b"\0" * BOMB_BYTES, compresslevel=9, mtime=0))

    tracemalloc.start()
    try:
        with pytest.raises(DownloadError) as error:
            fetch_mnist([str(mirror)], files=specs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert f"decompresses to more than {spec.raw_size} bytes" in str(error.value)
    assert peak < 2 * 1024 * 1024  # the bomb (64 MiB inflated) never materialises


def test_capped_gunzip_reads_concatenated_members_and_refuses_what_is_over():
    blob = gzip.compress(b"ab", mtime=0) + gzip.compress(b"cd", mtime=0)
    assert gunzip(blob, "f.gz", max_bytes=4) == b"abcd"
    with pytest.raises(DataError, match="decompresses to more than 3 bytes"):
        gunzip(blob, "f.gz", max_bytes=3)


def test_real_mnist_sizes_are_the_caps():
    assert FILES["x_train"].raw_size == 47040016 and FILES["y_test"].raw_size == 10008
