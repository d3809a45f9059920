"""The run's context for the report: package versions and the lock, device, git commit and data version."""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path

from pml_ops.tracking.provenance import (
    RUNTIME_LOCK,
    dvc_output_md5,
    git_commit,
    lock_differences,
    lock_digest,
    locked_versions,
)

PACKAGES = ("torch", "arviz", "scikit-learn", "mlflow", "dvc", "optuna", "numpy")


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def lock_agreement(project_dir: Path | None = None) -> str:
    """Whether the installed packages are the lock's: 'as locked (N packages)' or what differs."""
    lock = (Path.cwd() if project_dir is None else project_dir) / RUNTIME_LOCK
    try:
        locked = locked_versions(lock)
    except OSError:
        return "unknown (no lock file)"
    differences = [d for d in lock_differences(locked) if not d.other_build_only]
    if not differences:
        return f"as locked ({len(locked)} packages)"
    shown = ", ".join(str(d) for d in differences[:3]) + (", ..." if len(differences) > 3 else "")
    return f"{len(differences)} of {len(locked)} differ from the lock: {shown}"


def device_description() -> str:
    import torch  # deferred: ~1.1 s at import; the compare stage imports this package for Table 1

    if torch.cuda.is_available():
        return f"CUDA ({torch.cuda.get_device_name(0)})"
    return f"CPU ({platform.processor() or platform.machine()})"


def collect_environment(
    project_dir: Path | None = None, data_output: str = "data/mnist.npz"
) -> dict[str, str]:
    """Python and package versions, the lock's sha256 and whether the installed packages are the
    lock's, device, git commit and the DVC md5 of `data_output`."""
    environment = {"python": platform.python_version()}
    environment.update({name: package_version(name) for name in PACKAGES})
    environment[f"lock ({RUNTIME_LOCK}) sha256"] = lock_digest(project_dir)
    environment["installed packages"] = lock_agreement(project_dir)
    environment["device"] = device_description()
    environment["git commit"] = git_commit(project_dir)
    environment[f"data ({data_output}) md5"] = dvc_output_md5(data_output, project_dir)
    return environment
