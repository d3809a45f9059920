"""MNIST: fetch the four IDX files, verify them, and write one dataset artifact."""

from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from pml_ops.data.fetch import fetch_verified
from pml_ops.data.idx import gunzip, magic_number, parse_idx, verify_sha256
from pml_ops.errors import DataError
from pml_ops.io import atomic_path

MIRROR_ENV = "PML_OPS_MNIST_MIRROR"
IMAGE_SIDE = 28


@dataclass(frozen=True)
class IdxFile:
    """One MNIST file: its name, the SHA-256 of its decompressed content and its shape."""

    stem: str
    sha256: str
    shape: tuple[int, ...]

    @property
    def filename(self) -> str:
        return f"{self.stem}.gz"

    @property
    def magic(self) -> int:
        return magic_number(0x08, len(self.shape))

    @property
    def raw_size(self) -> int:
        """Bytes of the decompressed IDX file: the header, then one byte per value."""
        return 4 + 4 * len(self.shape) + math.prod(self.shape)


# Checksums of the decompressed IDX content (the gzip bytes differ between mirrors).
FILES = {
    "x_train": IdxFile(
        "train-images-idx3-ubyte",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        (60000, IMAGE_SIDE, IMAGE_SIDE),
    ),
    "y_train": IdxFile(
        "train-labels-idx1-ubyte",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        (60000,),
    ),
    "x_test": IdxFile(
        "t10k-images-idx3-ubyte",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        (10000, IMAGE_SIDE, IMAGE_SIDE),
    ),
    "y_test": IdxFile(
        "t10k-labels-idx1-ubyte",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        (10000,),
    ),
}


@dataclass(frozen=True)
class Mnist:
    """MNIST as uint8 arrays: images (N, 28, 28) in 0..255 and labels (N,) in 0..9."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def decode_file(spec: IdxFile, gz_blob: bytes) -> np.ndarray:
    """Decompress, verify and parse one file; any defect raises DataError naming the file."""
    raw = gunzip(gz_blob, spec.filename, max_bytes=spec.raw_size)
    verify_sha256(raw, spec.stem, spec.sha256)
    array = parse_idx(raw, spec.stem, expected_magic=spec.magic)
    if array.shape != spec.shape:
        raise DataError(f"{spec.stem}: shape {array.shape}, expected {spec.shape}")
    return array


def mirror_list(configured: list[str], environ: dict[str, str] | None = None) -> list[str]:
    """The configured mirrors, preceded by the local mirror named in $PML_OPS_MNIST_MIRROR."""
    env = os.environ if environ is None else environ
    local = env.get(MIRROR_ENV, "").strip()
    return [local, *configured] if local else list(configured)


def fetch_mnist(
    mirrors: list[str],
    timeout_s: float = 30.0,
    retries: int = 2,
    files: dict[str, IdxFile] = FILES,
) -> Mnist:
    """Fetch and verify every file in `files` (the real MNIST set unless a test passes its own)."""
    arrays = {
        key: fetch_verified(
            spec.filename,
            mirrors,
            validate=partial(decode_file, spec),
            timeout_s=timeout_s,
            retries=retries,
        )
        for key, spec in files.items()
    }
    return Mnist(**arrays)


def save_mnist(data: Mnist, path: str | os.PathLike[str]) -> None:
    """Write the dataset as an uncompressed .npz (fast to load), atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **data.__dict__)


def load_mnist(path: str | os.PathLike[str]) -> Mnist:
    """Load the artifact written by `save_mnist`, checking it is complete."""
    file = Path(path)
    if not file.is_file():
        raise DataError(f"{file}: dataset not found; run `dvc repro prepare` first")
    try:
        with np.load(file, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in FILES}
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as error:
        raise DataError(f"{file}: unreadable dataset artifact ({error})") from None
    for key, spec in FILES.items():
        if arrays[key].shape != spec.shape or arrays[key].dtype != np.uint8:
            raise DataError(f"{file}: '{key}' has shape {arrays[key].shape}, expected {spec.shape}")
    return Mnist(**arrays)
