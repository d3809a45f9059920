"""MNIST images as MLflow dataset inputs, named by split and size and digested by their DVC version."""

from __future__ import annotations

import warnings
from typing import Any

import mlflow
from mlflow.data.numpy_dataset import from_numpy

from pml_ops.tracking.provenance import dvc_output_md5, project_root
from pml_ops.tracking.store import retry_locked


def log_images(images: Any, split: str, data_path: str, context: str) -> Any:
    """Log the MNIST images of one split as a dataset input of the active run and return the
    MLflow dataset. Name `mnist-<split>-<N>` (a subset is another data set), digest the DVC md5
    of `data_path`, source that file in the project; the input is tagged with the split, the
    number of images and the md5."""
    md5 = dvc_output_md5(data_path)
    with warnings.catch_warnings():  # MLflow registers two equivalent sources for local files and
        warnings.simplefilter("ignore", UserWarning)  # warns that it picks one of them
        dataset = from_numpy(
            images, source=str(project_root() / data_path), name=f"mnist-{split}-{len(images)}", digest=md5
        )
    tags = {"split": split, "images": str(len(images)), "dvc_md5": md5, "path": data_path}
    retry_locked(lambda: mlflow.log_input(dataset, context=context, tags=tags), "logging the data set")
    return dataset
