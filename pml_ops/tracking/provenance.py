"""Where a run comes from: the project root, the DVC experiment, the git commit and the data version."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

from pml_ops.config import YAML_LOADER

# DVC sets DVC_ROOT for every stage command; for `dvc exp run --temp` and queued experiments it is
# the project's own root, not the temporary workspace the stage runs in (dvc/repo/experiments/
# queue/base.py), and DVC_EXP_NAME is the experiment's name.
DVC_ROOT_ENV = "DVC_ROOT"
DVC_EXP_ENV = "DVC_EXP_NAME"


def project_root() -> Path:
    """Where the project's store lives: $DVC_ROOT when DVC runs the stage (the real project root,
    also from a temporary experiment workspace), else the working directory."""
    return Path(os.environ.get(DVC_ROOT_ENV) or Path.cwd())


def dvc_experiment() -> str:
    """The DVC experiment this stage runs in ($DVC_EXP_NAME), or 'workspace' for `dvc repro`."""
    return os.environ.get(DVC_EXP_ENV) or "workspace"


def git_commit(project_dir: Path | None = None) -> str:
    """The HEAD commit, suffixed with '-dirty' when tracked files have uncommitted changes."""
    cwd = Path.cwd() if project_dir is None else project_dir
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}-dirty" if dirty else head


def dvc_output_md5(output: str, project_dir: Path | None = None) -> str:
    """The md5 DVC recorded in dvc.lock for `output` (the data version), or 'unknown'."""
    lock = (Path.cwd() if project_dir is None else project_dir) / "dvc.lock"
    try:
        stages = (yaml.load(lock.read_text(), Loader=YAML_LOADER) or {}).get("stages", {})
    except (OSError, yaml.YAMLError):
        return "unknown"
    for stage in stages.values():
        for out in stage.get("outs", []):
            if out.get("path") == output and "md5" in out:
                return str(out["md5"])
    return "unknown"
