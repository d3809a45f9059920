"""Density families declared through fake `pml_ops.families` entry points (`declare`), for the
discovery tests: what the config layer reads of a family (`FamilySchema`), and the
factor-analysis family of tests/helpers/plugin_family as a package on the path."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, EntryPoints
from pathlib import Path
from typing import Any

import pytest

from pml_ops.config import PositiveInt, Section, rediscover
from pml_ops.config.families import GROUP

PLUGIN_PACKAGE = Path(__file__).parent / "plugin_family"  # holds the package pml_ops_fa


class WideParams(Section):
    width: PositiveInt


@dataclass(frozen=True)
class Schema:
    """A family as far as params.yaml's validation goes."""

    name: str
    section: Any
    tuned: bool = False
    validate: Callable[[Any, Any], None] | None = None


def _narrower_than_the_subset(section: WideParams, density: Any) -> None:
    if density.subset.train is not None and section.width > density.subset.train:
        raise ValueError(f"wide.width: {section.width} exceeds density.subset.train")


WIDE = Schema("wide", WideParams, validate=_narrower_than_the_subset)
VAE_TWIN = Schema("vae", WideParams)
MISNAMED = Schema("narrow", WideParams)
NOT_A_SECTION = Schema("loose", dict)
RESERVED = Schema("density", WideParams)


def declare(monkeypatch: pytest.MonkeyPatch, **declared: str) -> None:
    """Make importlib.metadata list `declared` (name -> 'module:attribute') as the entry points
    of the `pml_ops.families` group, and forget the families found so far."""
    real = importlib.metadata.entry_points
    points = EntryPoints(EntryPoint(name, value, GROUP) for name, value in declared.items())

    def entry_points(**selection: Any) -> Any:
        return points if selection.get("group") == GROUP else real(**selection)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    rediscover()
