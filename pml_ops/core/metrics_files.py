"""Stage metrics files hold numbers only, so `dvc metrics show` and `dvc metrics diff` show one
small table of numbers per stage. What describes those numbers (names, units, text, flags, lists,
digests) goes to an info file beside them: a plain DVC out that the stages reading it depend on.
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Any

from pml_ops.core.io import write_json

Number = int | float


def is_number(value: Any) -> bool:
    """An int or float (numpy's too, NaN included); a boolean is not one: store flags as 0/1."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def split_metrics(metrics: dict[str, Any]) -> tuple[dict[str, Number], dict[str, Any]]:
    """(the numbers of `metrics`, everything else), each keeping its keys."""
    numbers = {key: value for key, value in metrics.items() if is_number(value)}
    return numbers, {key: value for key, value in metrics.items() if key not in numbers}


def write_metrics(path: str | os.PathLike[str], metrics: dict[str, Any]) -> None:
    """Write a flat DVC metrics file; a value that is not a number is a bug in the stage."""
    _, rest = split_metrics(metrics)
    if rest:
        raise TypeError(f"{path}: metrics must be numbers; move {sorted(rest)} to an info file")
    write_json(path, {key: _plain(value) for key, value in metrics.items()})


def write_split(
    metrics_path: str | os.PathLike[str], info_path: str | os.PathLike[str], metrics: dict[str, Any]
) -> None:
    """Write the numbers of `metrics` to `metrics_path` and the rest to `info_path`."""
    numbers, info = split_metrics(metrics)
    write_metrics(metrics_path, numbers)
    write_json(info_path, info)


def info_path(metrics_path: str | os.PathLike[str]) -> Path:
    """`metrics/evaluate/vae.json` -> `metrics/evaluate/vae_info.json`."""
    path = Path(metrics_path)
    return path.with_name(f"{path.stem}_info{path.suffix}")


def _plain(value: Number) -> Number:
    """numpy scalars as Python numbers: json cannot write numpy integers."""
    return int(value) if isinstance(value, numbers.Integral) else float(value)
