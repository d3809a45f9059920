"""What a density family is: one `Family` object, declared by the family's module.

pml-ops's own families live in `pml_ops/density/models/` (vae.py declares `vae` and `cvae`,
ppca.py `ppca`, gmm.py `gmm`); any installed package adds one by naming its `Family` in the
`pml_ops.families` entry-point group (docs/extending.md). The registry (`families`) finds them all
and does everything else: params.yaml entry -> section -> model, paths, artifacts, pre-flight.

A family's module must stay cheap to import (numpy, pydantic, pml_ops): params.yaml's validation
loads every family for its section schema, in every stage. Torch, scikit-learn and the like are
imported inside `create`, `load`, `fit` and friends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pml_ops.config import DensityParams, Section
from pml_ops.density.interface import DensityModel

# Activations one scoring pass may hold when no `evaluate.memory_budget_mib` is given (MiB).
DEFAULT_MEMORY_BUDGET_MIB = 64.0


@dataclass(frozen=True)
class ModelSettings:
    """What every family's model is made with besides its own section: the model's name (its
    entry in `models`), the seed of everything random (`density.seed`), where torch runs
    (`density.device`, `density.cpu_threads`) and the activations one scoring pass may hold."""

    name: str
    seed: int
    device: str = "cpu"  # "auto", "cpu" or "cuda"
    cpu_threads: Literal["auto"] | int | None = None
    memory_budget_mib: float = DEFAULT_MEMORY_BUDGET_MIB


class PreflightError(Exception):
    """A family's pre-flight check failed: `key` is the dotted key within its section that is at
    fault (e.g. 'architecture'), `problem` what is wrong. The registry adds the model and where
    the section was read from."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key, self.problem = key, problem


@dataclass(frozen=True)
class Family:
    """One density family.

    - `name`: what a `models` entry's `family` says; also the name of its params.yaml section.
    - `section`: the schema of that section (a strict `pml_ops.config.Section`: unknown keys and
      silent coercion are errors, each named by its dotted key).
    - `suffix`: the artifact's file suffix (`models/<model>/<model><suffix>`), e.g. '.npz'.
    - `create(section, settings)`: the unfitted model (a `DensityModel`) with its hyperparameters.
    - `load(path, settings, expected)`: the trained model saved at `path`, refused (DataError)
      when `expected` hyperparameters are given and differ from the saved ones. The registry
      passes those of `create(section, settings).hyperparameters()`.
    - `note`: how its score is computed, for Table 1 (a lower bound or exact; a normalised
      density over [0, 1]^784 or not, so whether bits/dim apply). Families may share one.
    - `preflight(section, settings)`: a check before any stage runs (the VAE builds its network
      and passes a blank image through it); raises PreflightError. None: nothing to check.
    - `validate(section, density)`: a check of the section against the shared `density`
      settings when params.yaml is validated; raises ValueError naming the dotted key.
    - `tuned`: its models may read a tuned section of `tuning.best_params_file` (`pml-ops tune`
      writes one for the VAE families: an architecture and a learning rate).
    - `by_epoch`: it trains by epochs and writes a validation-ELBO curve (dvc.yaml's plot).
    """

    name: str
    section: type[Section]
    suffix: str
    create: Callable[[Any, ModelSettings], DensityModel]
    load: Callable[[Path, ModelSettings, dict[str, Any] | None], DensityModel]
    note: str
    preflight: Callable[[Any, ModelSettings], None] | None = None
    validate: Callable[[Any, DensityParams], None] | None = None
    tuned: bool = False
    by_epoch: bool = False
