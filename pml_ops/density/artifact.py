"""One self-describing file per trained density model: what it is, its hyperparameters, its weights.

Every artifact carries a header {format, format_version, family, hyperparameters}. Torch files
hold {**header, "state_dict": ...} and are read with `weights_only=True`; .npz files hold the
arrays plus a `meta` entry with the header as JSON, read with `allow_pickle=False`. Neither runs
pickled code. A missing, corrupt or truncated file, one from another format version or one whose
family or hyperparameters are not the ones expected is refused with a `DataError` that names the
file and the DVC stage that rewrites it.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from pml_ops.core.errors import DataError
from pml_ops.core.io import atomic_path

FORMAT = "pml-ops density model"
FORMAT_VERSION = 1


def rerun_hint(name: str) -> str:
    return f"rerun `dvc repro train@{name}`"


def unreadable_torch_file(error: BaseException, what: str) -> str:
    """Why torch refused a file, in one line. A file that holds pickled objects besides tensors
    may be unsafe: torch's own text suggests loading it with `weights_only=False`, which would run
    them, so it is never repeated."""
    if isinstance(error, pickle.UnpicklingError) and "Weights only load failed" in str(error):
        return f"{what} holds pickled objects besides tensors and may be unsafe; it was not loaded"
    first_line = next((line for line in str(error).splitlines() if line.strip()), type(error).__name__)
    return f"{what} is corrupt or truncated ({first_line.strip()})"


def header(family: str, hyperparameters: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "family": family,
        "hyperparameters": hyperparameters,
    }


def check_header(
    path: Path, name: str, found: Any, family: str, hyperparameters: dict[str, Any] | None
) -> dict[str, Any]:
    """`found` if it is a header for `family` (and, when given, `hyperparameters`), else DataError."""
    where = f"{path}: model {name!r}"
    if not isinstance(found, dict) or found.get("format") != FORMAT:
        raise DataError(f"{where}: not a {FORMAT} file; {rerun_hint(name)}")
    if found.get("format_version") != FORMAT_VERSION:
        raise DataError(
            f"{where}: format version {found.get('format_version')!r}, this code reads "
            f"{FORMAT_VERSION}; {rerun_hint(name)}"
        )
    if found.get("family") != family:
        raise DataError(f"{where}: holds a {found.get('family')!r} model, not {family!r}; {rerun_hint(name)}")
    if hyperparameters is not None and found.get("hyperparameters") != hyperparameters:
        raise DataError(
            f"{where}: saved with hyperparameters {found.get('hyperparameters')}, but the params now "
            f"say {hyperparameters}; {rerun_hint(name)}"
        )
    return found


def _require_file(path: Path, name: str) -> None:
    if not path.is_file():
        raise DataError(f"{path}: trained model {name!r} not found; {rerun_hint(name)}")


def save_torch(path: Path, head: dict[str, Any], state_dict: dict[str, Any]) -> None:
    import torch  # deferred: ~1.1 s at import; the compare and PPCA/GMM evaluate stages never need it

    with atomic_path(path) as tmp:
        torch.save({**head, "state_dict": state_dict}, tmp)


def load_torch(
    path: Path, name: str, family: str, hyperparameters: dict[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, state dict) of a torch artifact."""
    import torch  # deferred: as in save_torch

    _require_file(path, name)
    try:  # weights_only: tensors and plain containers only, never arbitrary pickled code
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as error:
        raise DataError(
            f"{path}: {unreadable_torch_file(error, f'model {name!r}')}; {rerun_hint(name)}"
        ) from None
    head = check_header(path, name, loaded, family, hyperparameters)
    return head, loaded["state_dict"]


def save_npz(path: Path, head: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        payload: dict[str, Any] = {"meta": np.array(json.dumps(head)), **arrays}
        np.savez(fh, **payload)


def load_npz(
    path: Path, name: str, family: str, hyperparameters: dict[str, Any] | None
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(header, arrays) of an .npz artifact."""
    _require_file(path, name)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        found = json.loads(str(arrays.pop("meta"))) if "meta" in arrays else None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
        raise DataError(
            f"{path}: model {name!r} is corrupt or truncated ({error}); {rerun_hint(name)}"
        ) from None
    return check_header(path, name, found, family, hyperparameters), arrays
