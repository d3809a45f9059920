"""Save and load trained density models (the DVC outputs of the train stages)."""

from __future__ import annotations

import pickle
from pathlib import Path

from pml_ops.config import Params, model_section
from pml_ops.errors import DataError
from pml_ops.io import atomic_path

LATENT_VAES = ("vae", "cvae", "cvae_tuned")  # cvae_tuned: the CVAE from params_tuned.yaml
MODELS = ("vae", "cvae", "cvae_tuned", "ppca", "gmm")
SUFFIX = {"vae": ".pt", "cvae": ".pt", "cvae_tuned": ".pt", "ppca": ".npz", "gmm": ".npz"}


def model_path(params: Params, name: str) -> Path:
    return Path(params.density.models_dir) / f"{name}{SUFFIX[name]}"


def save_model(params: Params, name: str, model) -> Path:
    path = model_path(params, name)
    with atomic_path(path) as tmp:
        if name in LATENT_VAES:
            import torch

            torch.save(model.state_dict(), tmp)
        else:  # PPCA and GMM store plain arrays
            model.save(tmp)
    return path


def load_model(params: Params, name: str, device=None):
    """The trained model `name` as a DensityModel (VAE/CVAE wrapped in VaeDensity on `device`)."""
    path = model_path(params, name)
    if not path.is_file():
        raise DataError(f"{path}: trained model not found; run `dvc repro` first")
    if name in LATENT_VAES:
        import torch

        from pml_ops.density.architectures import build_model
        from pml_ops.density.interface import VaeDensity

        model = build_model(model_section(params, name).architecture, params.density.seed)
        try:  # weights_only: tensors and plain containers only, never arbitrary pickled code
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError) as error:
            raise DataError(f"{path}: not a loadable weights file ({error})") from None
        model.load_state_dict(state)
        return VaeDensity(name, model, device)
    if name == "ppca":
        from pml_ops.density.ppca import PPCA

        return PPCA.load(path)
    from pml_ops.density.gmm import GMM

    return GMM.load(path)
