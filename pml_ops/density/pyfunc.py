"""Every density model as one MLflow model: a custom pyfunc (MLflow 3 `PythonModel`).

`predict` takes float32 images (N, 784) with pixel values in [0, 1] (a NumPy array, or a DataFrame
of 784 float32 columns) and returns a DataFrame with one row per image and the columns of
`COLUMNS`. The model's own self-describing artifact (pml_ops.density.artifact: torch weights with
their architecture, the GMM's arrays, PPCA's W, mu, sigma^2) travels inside the MLflow model as
the artifact `density_model`, with the pml_ops code that reads it, so

    mlflow.pyfunc.load_model("models:/pml-ops-cvae@champion").predict(images)

works in any process with the project's requirements, and its mean `log_density` on the test
images is the evaluate stage's `test_score`.
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.pyfunc import PythonModel, log_model

import pml_ops
from pml_ops.config import density_families
from pml_ops.core.io import write_json
from pml_ops.density.families import load_artifact
from pml_ops.density.interface import DensityModel

ARTIFACT = "density_model"
NAME = "model"  # the logged model's name within its run
COLUMNS = {
    "log_density": "nats per image: the model's objective (single-sample ELBO for the VAE "
    "family, with the evaluate stage's fixed seed; exact log-likelihood for PPCA and the GMM), in "
    "the model's own float type (float32 for torch and the GMM, float64 for PPCA)",
    "latent_mean": "posterior mean of the latent variable (VAE/CVAE/PPCA: the latent_dim "
    "coordinates; GMM: the posterior probability of each component)",
    "reconstruction": "784 pixel values: the decoder mean at the posterior mean (GMM: the "
    "component means weighted by their posterior probabilities)",
}
INPUT = "float32 images (N, 784), pixel values in [0, 1]"


def as_images(model_input: Any) -> np.ndarray:
    """float32 (N, 784) from an array or DataFrame of images."""
    images = model_input.to_numpy() if isinstance(model_input, pd.DataFrame) else np.asarray(model_input)
    return np.ascontiguousarray(images, dtype=np.float32).reshape(len(images), -1)


def predict_frame(model: DensityModel, images: np.ndarray, seed: int) -> pd.DataFrame:
    """The pyfunc's output for `images`: one row per image, the columns of `COLUMNS`."""
    return pd.DataFrame(
        {
            "log_density": np.asarray(model.log_density(images)),  # the model's own float type
            "latent_mean": list(np.asarray(model.encode(images), dtype=np.float64)),
            "reconstruction": list(np.asarray(model.reconstruct(images, False, seed), dtype=np.float64)),
        }
    )


class DensityPyfunc(PythonModel):
    """Loads the model's artifact (on the CPU) and answers `predict` with `predict_frame`."""

    def load_context(self, context: Any) -> None:
        config = context.model_config
        self.seed = int(config["seed"])
        self.model = load_artifact(
            Path(context.artifacts[ARTIFACT]), config["name"], config["family"], self.seed, "cpu"
        )

    # model_input is left unannotated: MLflow would read a type hint as the input schema, which
    # the signature (a float32 tensor (-1, 784)) states instead.
    def predict(self, context, model_input, params=None):
        """`predict_frame` of the images in `model_input` (an array or a DataFrame)."""
        return predict_frame(self.model, as_images(model_input), self.seed)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def requirements(family: str) -> list[str]:
    """Pinned requirements of the loaded model (given, so MLflow does not infer them by loading
    the model in a subprocess); a family from another package adds that package (the model
    carries pml_ops's code, not the family's)."""

    import torch  # deferred: ~1.1 s at import; the PPCA and GMM evaluate stages reuse the logged model

    found = density_families().get(family)
    declared = [found.distribution] if found is not None and found.distribution else []
    return [
        f"mlflow=={mlflow.__version__}",
        f"torch=={torch.__version__.split('+')[0]}",
        f"scikit-learn=={version('scikit-learn')}",  # its metadata: importing it takes ~1.5 s
        f"numpy=={np.__version__}",
        f"pandas=={pd.__version__}",
        "pydantic>=2",
        "pyyaml",
        *declared,
    ]


def log_density_model(
    model: DensityModel, artifact_path: Path, example: np.ndarray, seed: int, tags: dict[str, str]
) -> Any:
    """Log `model` (saved at `artifact_path`) as the pyfunc in the active run; return MLflow's
    ModelInfo (its `model_id` names the LoggedModel). `example`: a few images, the input
    example from which the signature is inferred."""
    images = as_images(example)
    signature = infer_signature(images, predict_frame(model, images, seed))
    return log_model(
        name=NAME,
        python_model=str(Path(__file__).with_name("pyfunc_from_code.py")),  # model from code: no pickle
        artifacts={ARTIFACT: str(artifact_path)},
        model_config={"name": model.name, "family": model.family, "seed": seed},
        code_paths=[str(Path(pml_ops.__file__).parent)],
        signature=signature,
        input_example=images,
        pip_requirements=requirements(model.family),
        tags={**tags, "artifact_sha256": file_sha256(artifact_path), "objective": model.objective},
    )


def record_path(artifact_path: Path) -> Path:
    """Where the train stage notes which LoggedModel holds the artifact (beside it)."""
    return artifact_path.with_name("mlflow_model.json")


def log_and_record(
    model: DensityModel, artifact_path: Path, example: np.ndarray, seed: int, tags: dict[str, str]
) -> str:
    """`log_density_model`, then write its model id and the artifact's digest beside the artifact
    (so the evaluate stage links its metrics and the registry version to this LoggedModel)."""
    info = log_density_model(model, artifact_path, example, seed, tags)
    write_json(
        record_path(artifact_path), {"model_id": info.model_id, "artifact_sha256": file_sha256(artifact_path)}
    )
    return str(info.model_id)


def recorded_or_logged(
    model: DensityModel, artifact_path: Path, example: np.ndarray, seed: int, tags: dict[str, str]
) -> str:
    """The id of the LoggedModel the train stage recorded for this very artifact, if this store
    has it; else (another store, or an artifact from elsewhere) log the model now, in the active
    run."""
    try:
        record = json.loads(record_path(artifact_path).read_text())
    except (OSError, ValueError):
        record = {}
    if record.get("artifact_sha256") == file_sha256(artifact_path):
        try:
            return str(mlflow.get_logged_model(record["model_id"]).model_id)
        except MlflowException:
            pass
    return str(log_density_model(model, artifact_path, example, seed, tags).model_id)
