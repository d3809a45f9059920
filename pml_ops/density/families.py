"""The one registry of density models: the `models` list in params.yaml -> model objects and paths.

Each entry names a family (a `Family`: pml-ops's own in `pml_ops/density/models/`, or one that an
installed package declares in the `pml_ops.families` entry-point group) and optionally a tuned
section of `tuning.best_params_file` whose architecture and learning rate replace the family's.
Stages, evaluation, the comparison and the report look models up here, never by name, and ask the
family (`family`) for what differs between families.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pml_ops.config import (
    ModelEntry,
    Params,
    PositiveFloat,
    Section,
    density_families,
    format_validation_error,
    load_yaml,
    override_architecture,
)
from pml_ops.core.errors import ConfigError
from pml_ops.core.metrics_files import info_path
from pml_ops.density.family import DEFAULT_MEMORY_BUDGET_MIB, Family, ModelSettings, PreflightError
from pml_ops.density.interface import DensityModel

# Table 1, every model's row with its numbers and what describes them (stage compare_density)
COMPARISON_TABLE = Path("reports/density_comparison.json")


def all_families() -> dict[str, Family]:
    """Every density family found, by name (pml-ops's own first, then the entry points')."""
    found = {}
    for name, item in density_families().items():
        if not isinstance(item.family, Family):
            raise ConfigError(
                f"density family {name!r} from {item.source}: not a pml_ops.density.family.Family "
                f"(got {type(item.family).__name__})"
            )
        found[name] = item.family
    return found


def family(name: str) -> Family:
    """The density family called `name`."""
    known = all_families()
    if name not in known:
        raise ConfigError(f"no density family {name!r}; the families found are {', '.join(known)}")
    return known[name]


def model_names(params: Params) -> list[str]:
    return list(params.models)


def entry(params: Params, name: str) -> ModelEntry:
    if name not in params.models:
        raise ConfigError(f"models: no density model {name!r}; params.yaml lists {', '.join(params.models)}")
    return params.models[name]


def family_of(params: Params, name: str) -> Family:
    """The family of model `name`."""
    return family(entry(params, name).family)


def notes(params: Params) -> list[str]:
    """Table 1's notes on how the listed models' scores are computed: one per family (families
    sharing a note share it once), in the order of the `models` list."""
    found = [family_of(params, name).note for name in model_names(params)]
    return list(dict.fromkeys(found))


@dataclass(frozen=True)
class ModelPaths:
    """Where a model's stages write: the one place these paths are spelled out."""

    artifact: Path
    checkpoint: Path
    train_metrics: Path
    history: Path
    evaluate_metrics: Path
    evaluate_info: Path  # what describes the numbers: objective, observation, units (not metrics)
    figures: Path


def paths(params: Params, name: str) -> ModelPaths:
    cfg, suffix = params.density, family_of(params, name).suffix
    metrics = Path(cfg.metrics_dir)
    return ModelPaths(
        artifact=Path(cfg.models_dir) / name / f"{name}{suffix}",
        checkpoint=Path(cfg.checkpoint_dir) / f"{name}.pt",
        train_metrics=metrics / "train" / f"{name}.json",
        history=metrics / "train" / f"{name}_history.json",
        evaluate_metrics=metrics / "evaluate" / f"{name}.json",
        evaluate_info=info_path(metrics / "evaluate" / f"{name}.json"),
        figures=Path(cfg.figures_dir) / name,
    )


class TunedParams(Section):
    """One tuned section of the best-params file written by `pml-ops tune`."""

    architecture: dict[str, Any]
    lr: PositiveFloat
    source: dict[str, Any]


def load_tuned(path: str | os.PathLike[str], section: str, base: Any) -> Any:
    """`base` (a tuned family's section: `architecture` and `training`) with the architecture and
    learning rate of `section` in the best-params file (epochs and batch size stay the base
    model's, so tuned and default models train alike)."""
    file = Path(path)
    model = section.removesuffix("_tuned")
    try:
        raw = load_yaml(file.read_text(), str(file))
    except FileNotFoundError:
        raise ConfigError(f"{file}: not found; run `pml-ops tune --model {model}` first") from None
    if not isinstance(raw, dict) or section not in raw:
        raise ConfigError(f"{file}: no '{section}' section; run `pml-ops tune --model {model}` first")
    try:
        tuned = TunedParams.model_validate(raw[section])
        return type(base).model_validate(
            {"architecture": tuned.architecture, "training": {**base.training.model_dump(), "lr": tuned.lr}}
        )
    except ValidationError as error:
        message = format_validation_error(str(file), error)
        raise ConfigError(message.replace("'architecture", f"'{section}.architecture")) from None


def section(params: Params, name: str) -> Any:
    """Model `name`'s section: its family's, or the tuned one where its entry says so, then with
    the entry's own `architecture` keys (e.g. `decoder: continuous_bernoulli`) replaced."""
    found = entry(params, name)
    resolved = params.section(found.family)
    if found.tuned:
        resolved = load_tuned(found.file, found.section, resolved)
    if found.architecture is None:
        return resolved
    # pml_ops.config.params checked the keys against the family's architecture class, which a tuned one shares
    arch = override_architecture(resolved.architecture, found.architecture, f"models.{name}.architecture")
    return resolved.model_copy(update={"architecture": arch})


def settings(params: Params, name: str) -> ModelSettings:
    """The shared settings model `name` is made with."""
    cfg = params.density
    return ModelSettings(name, cfg.seed, cfg.device, cfg.cpu_threads, params.evaluate.memory_budget_mib)


def create(params: Params, name: str) -> DensityModel:
    """The unfitted model `name` with its hyperparameters from params (and the tuned file)."""
    return family_of(params, name).create(section(params, name), settings(params, name))


def load_artifact(
    path: Path,
    name: str,
    family_name: str,
    seed: int,
    device: str = "cpu",
    expected: dict[str, Any] | None = None,
    memory_budget_mib: float = DEFAULT_MEMORY_BUDGET_MIB,
) -> DensityModel:
    """The trained model saved at `path` by a model of family `family_name` (refused when
    `expected` hyperparameters are given and differ). `device`: where a torch model runs."""
    model_settings = ModelSettings(name, seed, device, memory_budget_mib=memory_budget_mib)
    return family(family_name).load(path, model_settings, expected)


def load(params: Params, name: str) -> DensityModel:
    """The trained model `name` from its artifact, refused unless it matches the params."""
    model_family, model_settings = family_of(params, name), settings(params, name)
    expected = model_family.create(section(params, name), model_settings).hyperparameters()
    return model_family.load(paths(params, name).artifact, model_settings, expected)


def check_buildable(params: Params, name: str) -> None:
    """The family's pre-flight check of model `name` (the VAE families build the network on the
    CPU and pass one blank image through it); raise ConfigError naming the model, where its
    section was read and the key at fault."""
    found, model_family = entry(params, name), family_of(params, name)
    if model_family.preflight is None:
        return
    resolved = section(params, name)
    try:
        model_family.preflight(resolved, ModelSettings(name, seed=0))
    except PreflightError as error:
        key = f"{found.file}: {found.section}.{error.key}"
        if found.architecture is not None and error.key.split(".")[0] == "architecture":
            key += f" with models.{name}.architecture"
        raise ConfigError(f"models.{name}: {key}: {error.problem}") from None


def check_models(params: Params) -> None:
    """Resolve every model of the list (tuned files included) and run each pre-flight check."""
    for name in model_names(params):
        check_buildable(params, name)
