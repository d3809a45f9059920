"""The run's context for the report: package versions, device, git commit and data version."""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path

from pml_ops.tracking.provenance import dvc_output_md5, git_commit

PACKAGES = ("torch", "pyro-ppl", "arviz", "scikit-learn", "mlflow", "dvc", "optuna", "numpy")


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def device_description() -> str:
    import torch  # deferred: ~1.1 s at import; the compare stage imports this package for Table 1

    if torch.cuda.is_available():
        return f"CUDA ({torch.cuda.get_device_name(0)})"
    return f"CPU ({platform.processor() or platform.machine()})"


def collect_environment(
    project_dir: Path | None = None, data_output: str = "data/mnist.npz"
) -> dict[str, str]:
    """Python and package versions, device, git commit and the DVC md5 of `data_output`."""
    environment = {"python": platform.python_version()}
    environment.update({name: package_version(name) for name in PACKAGES})
    environment["device"] = device_description()
    environment["git commit"] = git_commit(project_dir)
    environment[f"data ({data_output}) md5"] = dvc_output_md5(data_output, project_dir)
    return environment
