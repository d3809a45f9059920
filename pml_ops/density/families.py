"""The one registry of density models: the `models` list in params.yaml -> model objects and paths.

Each entry names a family (the model class and its params.yaml section) and optionally a tuned
section of `tuning.best_params_file` whose architecture and learning rate replace the family's.
Stages, evaluation, the comparison and the report look models up here, never by name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pml_ops.config import (
    CvaeParams,
    ModelEntry,
    Params,
    PositiveFloat,
    Section,
    VaeParams,
    format_validation_error,
    load_yaml,
    override_architecture,
)
from pml_ops.core.errors import ArchitectureError, ConfigError
from pml_ops.core.metrics_files import info_path
from pml_ops.density.data import resolve_device
from pml_ops.density.interface import DensityModel
from pml_ops.density.models.gmm import GMM
from pml_ops.density.models.ppca import PPCA
from pml_ops.density.models.vae import DEFAULT_MEMORY_BUDGET_MIB, VaeModel

SUFFIX = {"vae": ".pt", "cvae": ".pt", "ppca": ".npz", "gmm": ".npz"}
# Table 1, every model's row with its numbers and what describes them (stage compare_density)
COMPARISON_TABLE = Path("reports/density_comparison.json")


def model_names(params: Params) -> list[str]:
    return list(params.models)


def entry(params: Params, name: str) -> ModelEntry:
    if name not in params.models:
        raise ConfigError(f"models: no density model {name!r}; params.yaml lists {', '.join(params.models)}")
    return params.models[name]


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
    cfg, family = params.density, entry(params, name).family
    metrics = Path(cfg.metrics_dir)
    return ModelPaths(
        artifact=Path(cfg.models_dir) / name / f"{name}{SUFFIX[family]}",
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


def load_tuned(
    path: str | os.PathLike[str], section: str, base: VaeParams | CvaeParams
) -> VaeParams | CvaeParams:
    """`base` with the architecture and learning rate of `section` in the best-params file (epochs
    and batch size stay the base model's, so tuned and default models train alike)."""
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


def vae_params(params: Params, name: str) -> VaeParams | CvaeParams:
    """A VAE-family model's architecture and training: tuned where its entry says so, then with
    the entry's own `architecture` keys (e.g. `decoder: continuous_bernoulli`) replaced."""
    found = entry(params, name)
    section: VaeParams | CvaeParams = getattr(params, found.family)
    if found.tuned:
        section = load_tuned(found.file, found.section, section)
    if found.architecture is None:
        return section
    # pml_ops.config.params checked the keys against the family's architecture class, which a tuned one shares
    arch = override_architecture(section.architecture, found.architecture, f"models.{name}.architecture")
    return section.model_copy(update={"architecture": arch})


def _device(params: Params) -> Any:
    return resolve_device(params.density.device, params.density.cpu_threads)


def create(params: Params, name: str) -> DensityModel:
    """The unfitted model `name` with its hyperparameters from params (and the tuned file)."""
    family, seed = entry(params, name).family, params.density.seed
    if family == "ppca":
        return PPCA(params.ppca.latent_dim, name)
    if family == "gmm":
        return GMM(params.gmm, seed, name)
    section = vae_params(params, name)
    budget = params.evaluate.memory_budget_mib
    return VaeModel(name, family, section.architecture, section.training, seed, _device(params), budget)


def load_artifact(
    path: Path,
    name: str,
    family: str,
    seed: int,
    device: Any,
    expected: dict[str, Any] | None = None,
    memory_budget_mib: float = DEFAULT_MEMORY_BUDGET_MIB,
) -> DensityModel:
    """The trained model saved at `path` by a model of `family` (refused when `expected`
    hyperparameters are given and differ). `device`: where a torch model runs."""
    if family == "ppca":
        return PPCA.load(path, name, expected)
    if family == "gmm":
        return GMM.load(path, name, seed, expected)
    import torch  # deferred: ~1.1 s at import; the compare and PPCA/GMM evaluate stages never need it

    return VaeModel.load(path, name, family, seed, torch.device(device), expected, memory_budget_mib)


def load(params: Params, name: str) -> DensityModel:
    """The trained model `name` from its artifact, refused unless it matches the params."""
    family, seed, path = entry(params, name).family, params.density.seed, paths(params, name).artifact
    if family == "ppca":
        expected: dict[str, Any] = {"latent_dim": params.ppca.latent_dim}
        return load_artifact(path, name, family, seed, "cpu", expected)
    if family == "gmm":
        return load_artifact(path, name, family, seed, "cpu", params.gmm.model_dump())
    section = vae_params(params, name)
    expected = {"architecture": section.architecture.model_dump(), "training": section.training.model_dump()}
    return load_artifact(
        path, name, family, seed, _device(params), expected, params.evaluate.memory_budget_mib
    )


def check_buildable(params: Params, name: str) -> None:
    """Build a VAE-family model on the CPU and pass one blank image through it; raise ConfigError
    naming the model's architecture key and the layer that breaks (no data, no weights saved)."""
    found = entry(params, name)
    if found.family not in ("vae", "cvae"):
        return
    import torch  # deferred: as in load_artifact

    key = f"{found.file}: {found.section}.architecture"
    if found.architecture is not None:
        key += f" with models.{name}.architecture"
    section = vae_params(params, name)
    try:
        module = VaeModel(
            name, found.family, section.architecture, section.training, 0, torch.device("cpu")
        ).build()
        with torch.inference_mode():
            mean, _ = module.posterior(torch.zeros(1, 1, 28, 28))
            out = module.decode(mean)
    except ArchitectureError as error:  # its message starts with the default section's key
        raise ConfigError(f"models.{name}: {key}: {str(error).removeprefix('cvae.architecture ')}") from None
    except RuntimeError as error:
        raise ConfigError(f"models.{name}: {key}: the network cannot be built ({error})") from None
    if tuple(out.shape) != (1, 1, 28, 28):
        raise ConfigError(
            f"models.{name}: {key}: the decoder returns {tuple(out.shape)[1:]}, not (1, 28, 28)"
        )


def check_models(params: Params) -> None:
    """Resolve every model of the list (tuned files included) and build each network."""
    for name in model_names(params):
        check_buildable(params, name)
