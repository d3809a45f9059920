"""Nested params as MLflow's flat params: one dotted key per value."""

from __future__ import annotations

from typing import Any


def flatten(prefix: str, value: Any) -> dict[str, Any]:
    """Nested params -> {'gp.nuts.num_samples': 2000, ...}: the dotted keys used everywhere
    (error messages, MLflow params)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(f"{prefix}.{key}", item))
        return out
    return {prefix: value}
