"""Progress bars that show on a terminal and stay quiet in CI logs."""

from __future__ import annotations

import os
import sys
from typing import Any

from tqdm.auto import tqdm


def progress_enabled() -> bool:
    """Bars only when stderr is a terminal; PML_OPS_PROGRESS=1/0 forces them on or off."""
    forced = os.environ.get("PML_OPS_PROGRESS")
    if forced is not None:
        return forced not in ("0", "false", "no", "")
    return sys.stderr.isatty()


def progress(iterable: Any = None, **kwargs: Any) -> tqdm:
    """`tqdm` with `disable` decided by `progress_enabled()` unless the caller says otherwise."""
    kwargs.setdefault("disable", not progress_enabled())
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)
