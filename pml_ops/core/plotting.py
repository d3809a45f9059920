"""The one way figures are made and written: matplotlib's file-only backend, atomic writes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pml_ops.core.io import atomic_path


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    # deferred: ~0.4 s at import, and the backend must be chosen before pyplot is imported; the
    # compare and report stages import modules that draw, and draw nothing
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure: Any, path: str | os.PathLike[str], tight: bool = True) -> Path:
    """Write `figure` atomically in the format its suffix names (110 dpi) and close it."""
    target = Path(path)
    with atomic_path(target) as tmp:
        figure.savefig(tmp, format=target.suffix.lstrip("."), dpi=110, bbox_inches="tight" if tight else None)
    pyplot().close(figure)
    return target
