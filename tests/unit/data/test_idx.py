import gzip

import numpy as np
import pytest

from pml_ops.core.errors import DataError
from pml_ops.data.idx import gunzip, parse_idx, sha256_hex, verify_sha256
from pml_ops.data.mnist import FILES, IdxFile, decode_file
from tests.helpers.idx_files import encode_idx


def test_roundtrip_matches_numpy_reference():
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    blob = encode_idx(array)
    # Header by hand: 0x00000803 then the three dimensions, big-endian.
    assert blob[:16] == bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4])
    np.testing.assert_array_equal(parse_idx(blob, "t"), array)


def test_parses_big_endian_int32():
    array = np.array([1, -2, 70000], dtype=np.int32)
    np.testing.assert_array_equal(parse_idx(encode_idx(array), "t"), array)


def test_wrong_magic_is_reported():
    blob = encode_idx(np.zeros((2, 2), dtype=np.uint8))  # magic 2050
    with pytest.raises(DataError, match=r"images: wrong IDX magic number 2050, expected 2051"):
        parse_idx(blob, "images", expected_magic=2051)


def test_not_an_idx_file():
    with pytest.raises(DataError, match="not an IDX file"):
        parse_idx(b"\x89PNG\r\n\x1a\n" + bytes(8), "x")


def test_truncated_data_is_reported():
    blob = encode_idx(np.zeros((4, 3), dtype=np.uint8))[:-2]
    with pytest.raises(DataError, match=r"declares shape \(4, 3\) \(12 bytes of data\).*10 bytes"):
        parse_idx(blob, "x")


def test_truncated_header_is_reported():
    with pytest.raises(DataError, match="truncated IDX"):
        parse_idx(b"\x00\x00", "x")


def test_corrupt_gzip_is_reported():
    with pytest.raises(DataError, match="f.gz: corrupt or truncated gzip"):
        gunzip(b"this is not gzip", "f.gz")


def test_truncated_gzip_is_reported():
    blob = gzip.compress(bytes(1000))
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        gunzip(blob[: len(blob) // 2], "f.gz")


def test_checksum_mismatch_names_file_expected_and_got():
    expected = "0" * 64
    got = sha256_hex(b"abc")
    with pytest.raises(DataError, match=f"f: checksum mismatch: expected sha256 {expected}, got {got}"):
        verify_sha256(b"abc", "f", expected)


def test_decode_rejects_wrong_shape():
    raw = encode_idx(np.zeros((3, 5, 5), dtype=np.uint8))
    spec = IdxFile("s", sha256_hex(raw), (3, 28, 28))
    with pytest.raises(DataError, match=r"s: shape \(3, 5, 5\), expected \(3, 28, 28\)"):
        decode_file(spec, gzip.compress(raw))


def test_pinned_checksums_are_the_published_ones():
    # Independent reference: ../shared/mnist/README.md.
    assert FILES["x_train"].sha256.startswith("ba891046")
    assert FILES["y_test"].sha256.startswith("ff7bcfd4")
    assert [spec.magic for spec in FILES.values()] == [2051, 2049, 2051, 2049]
