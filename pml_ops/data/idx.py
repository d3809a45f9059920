"""The IDX file format of MNIST (big-endian header, then raw values), parsed with numpy."""

from __future__ import annotations

import gzip
import hashlib
import zlib

import numpy as np

from pml_ops.core.errors import DataError

# IDX type byte -> numpy dtype (big-endian where it matters).
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def gunzip(blob: bytes, name: str, max_bytes: int | None = None) -> bytes:
    """Decompress a gzip file, turning corrupt or truncated input into a DataError.

    With `max_bytes`, decompression streams and stops as soon as the output would exceed it (a
    gzip bomb costs at most `max_bytes` of memory, not what it would inflate to).
    """
    if max_bytes is None:
        try:
            return gzip.decompress(blob)
        except (OSError, EOFError, zlib.error) as error:
            raise DataError(f"{name}: corrupt or truncated gzip data ({error})") from None
    out = bytearray()
    rest = blob
    try:
        while rest:  # one gzip member after another, as gzip.decompress reads them
            member = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            out += member.decompress(rest, max_bytes + 1 - len(out))
            if len(out) > max_bytes:
                raise DataError(
                    f"{name}: decompresses to more than {max_bytes} bytes, the size of its expected "
                    "content; refused without decompressing the rest (corrupt or not this file)"
                )
            if not member.eof:
                raise DataError(f"{name}: corrupt or truncated gzip data (no end of stream)")
            rest = member.unused_data
    except zlib.error as error:
        raise DataError(f"{name}: corrupt or truncated gzip data ({error})") from None
    return bytes(out)


def sha256_hex(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def verify_sha256(blob: bytes, name: str, expected: str) -> None:
    got = sha256_hex(blob)
    if got != expected:
        raise DataError(f"{name}: checksum mismatch: expected sha256 {expected}, got {got}")


def magic_number(dtype_code: int, ndim: int) -> int:
    """The 32-bit IDX magic: two zero bytes, the type code, the number of dimensions."""
    return (dtype_code << 8) | ndim


def parse_idx(blob: bytes, name: str, expected_magic: int | None = None) -> np.ndarray:
    """Parse decompressed IDX bytes into an array of the shape the header declares."""
    if len(blob) < 4:
        raise DataError(f"{name}: truncated IDX file ({len(blob)} bytes, no header)")
    magic = int.from_bytes(blob[:4], "big")
    if expected_magic is not None and magic != expected_magic:
        raise DataError(f"{name}: wrong IDX magic number {magic}, expected {expected_magic}")
    zeros, dtype_code, ndim = magic >> 16, (magic >> 8) & 0xFF, magic & 0xFF
    if zeros != 0 or dtype_code not in _IDX_DTYPES or ndim == 0:
        raise DataError(f"{name}: not an IDX file (magic number {magic})")
    header_end = 4 + 4 * ndim
    if len(blob) < header_end:
        raise DataError(f"{name}: truncated IDX header ({len(blob)} bytes)")
    shape = tuple(int(d) for d in np.frombuffer(blob, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[dtype_code]
    expected_bytes = int(np.prod(shape)) * dtype.itemsize
    actual_bytes = len(blob) - header_end
    if actual_bytes != expected_bytes:
        raise DataError(
            f"{name}: IDX header declares shape {shape} ({expected_bytes} bytes of data) "
            f"but the file holds {actual_bytes} bytes"
        )
    data = np.frombuffer(blob, dtype=dtype, offset=header_end).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=True)
