"""IDX files for tests: an array serialised as MNIST's format, which `pml_ops.data.idx` parses."""

from __future__ import annotations

import numpy as np

from pml_ops.data.idx import _IDX_DTYPES, magic_number


def encode_idx(array: np.ndarray) -> bytes:
    """Serialise an array as IDX: the inverse of `pml_ops.data.idx.parse_idx`."""
    codes = {dtype.kind + str(dtype.itemsize): code for code, dtype in _IDX_DTYPES.items()}
    code = codes[array.dtype.kind + str(array.dtype.itemsize)]
    header = magic_number(code, array.ndim).to_bytes(4, "big")
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(_IDX_DTYPES[code], copy=False).tobytes()
