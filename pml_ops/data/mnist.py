"""MNIST-format data sets (MNIST, Fashion-MNIST): fetch the four IDX files, verify them, and write one
dataset artifact."""

from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from pml_ops.core.errors import DataError
from pml_ops.core.io import atomic_path
from pml_ops.data.fetch import fetch_verified
from pml_ops.data.idx import gunzip, magic_number, parse_idx, verify_sha256

MIRROR_ENV = "PML_OPS_MNIST_MIRROR"  # MNIST's local mirror; each data set names its own below
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


def _files(sha256: dict[str, str], n_train: int = 60000, n_test: int = 10000) -> dict[str, IdxFile]:
    """The four IDX files of an MNIST-format set with the checksums of their decompressed content."""
    side = (IMAGE_SIDE, IMAGE_SIDE)
    return {
        "x_train": IdxFile("train-images-idx3-ubyte", sha256["x_train"], (n_train, *side)),
        "y_train": IdxFile("train-labels-idx1-ubyte", sha256["y_train"], (n_train,)),
        "x_test": IdxFile("t10k-images-idx3-ubyte", sha256["x_test"], (n_test, *side)),
        "y_test": IdxFile("t10k-labels-idx1-ubyte", sha256["y_test"], (n_test,)),
    }


@dataclass(frozen=True)
class DatasetSpec:
    """An MNIST-format data set: pinned files, the local-mirror variable and the class names."""

    name: str
    title: str
    files: dict[str, IdxFile]
    mirror_env: str
    class_names: tuple[str, ...]


DATASETS = {
    "mnist": DatasetSpec("mnist", "MNIST", FILES, MIRROR_ENV, tuple(str(d) for d in range(10))),
    # Checksums computed from Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist).
    "fashion-mnist": DatasetSpec(
        "fashion-mnist",
        "Fashion-MNIST",
        _files(
            {
                "x_train": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                "y_train": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                "x_test": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                "y_test": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            }
        ),
        "PML_OPS_FASHION_MNIST_MIRROR",
        (
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
    ),
}


def dataset(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise DataError(f"data.dataset: unknown data set {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name]


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


def mirror_list(
    configured: list[str], environ: dict[str, str] | None = None, variable: str = MIRROR_ENV
) -> list[str]:
    """The configured mirrors, preceded by the local mirror named in $`variable` (the data set's
    own: $PML_OPS_MNIST_MIRROR, $PML_OPS_FASHION_MNIST_MIRROR)."""
    env = os.environ if environ is None else environ
    local = env.get(variable, "").strip()
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


def save_mnist(data: Mnist, path: str | os.PathLike[str], name: str = "mnist") -> None:
    """Write the dataset (named `name`) as an uncompressed .npz (fast to load), atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **data.__dict__, dataset=np.array(name))


def load_mnist(path: str | os.PathLike[str], name: str | None = None) -> Mnist:
    """Load the artifact written by `save_mnist`, checking it is complete (and, given `name`, that
    it holds that data set)."""
    file = Path(path)
    if not file.is_file():
        raise DataError(f"{file}: dataset not found; run `dvc repro prepare` first")
    try:
        with np.load(file, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in FILES}
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as error:
        raise DataError(
            f"{file}: unreadable dataset artifact ({error}); rebuild it with `dvc repro -f prepare`"
            " (or restore the cached copy with `dvc checkout`)"
        ) from None
    if name is not None:
        with np.load(file, allow_pickle=False) as npz:
            saved = str(npz["dataset"]) if "dataset" in npz.files else "mnist"
        if saved != name:
            raise DataError(
                f"{file}: holds {saved}, but data.dataset is {name}; run `dvc repro prepare` first"
            )
    for key, spec in FILES.items():
        if arrays[key].shape != spec.shape or arrays[key].dtype != np.uint8:
            raise DataError(f"{file}: '{key}' has shape {arrays[key].shape}, expected {spec.shape}")
    return Mnist(**arrays)
