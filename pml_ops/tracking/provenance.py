"""Where a run comes from: the project root, the DVC experiment, the git commit, the data version and
the locked package versions (requirements/runtime.txt, scripts/lock.sh)."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import yaml

from pml_ops.config import YAML_LOADER

# DVC sets DVC_ROOT for every stage command; for `dvc exp run --temp` and queued experiments it is
# the project's own root, not the temporary workspace the stage runs in (dvc/repo/experiments/
# queue/base.py), and DVC_EXP_NAME is the experiment's name.
DVC_ROOT_ENV = "DVC_ROOT"
DVC_EXP_ENV = "DVC_EXP_NAME"
# The lock of the packages a run uses (scripts/lock.sh): every environment holds its versions; the
# dev lock adds the tools (tests, linters) on top, at the same versions for the shared packages.
RUNTIME_LOCK = "requirements/runtime.txt"
DEV_LOCK = "requirements/dev.txt"
LOCK_DIGEST_TAG = "pml_ops.lock_digest"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


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


def lock_digest(project_dir: Path | None = None, lock: str = RUNTIME_LOCK) -> str:
    """The sha256 of the lock file (the package versions a run uses), or 'unknown'."""
    path = (Path.cwd() if project_dir is None else project_dir) / lock
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "unknown"


def normalize_name(name: str) -> str:
    """A distribution name as PyPI compares them (PEP 503): `Flask_WTF` is `flask-wtf`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions(lock_file: Path) -> dict[str, str]:
    """name -> version of every `name==version` pin of a lock file (normalized names)."""
    pins = {}
    for line in lock_file.read_text().splitlines():
        match = _PIN.match(line)
        if match:
            pins[normalize_name(match[1])] = match[2]
    return pins


def installed_versions() -> dict[str, str]:
    """name -> version of every distribution importable in this environment."""
    installed: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            installed.setdefault(normalize_name(name), dist.version)
    return installed


@dataclass(frozen=True)
class LockDifference:
    """A locked package that is missing or installed at another version (`installed` None: missing)."""

    name: str
    locked: str
    installed: str | None

    @property
    def other_build_only(self) -> bool:
        """The same release in another build (torch 2.13.0 from PyPI, CUDA, for 2.13.0+cpu)."""
        return self.installed is not None and self.installed.split("+")[0] == self.locked.split("+")[0]

    def __str__(self) -> str:
        return f"{self.name} {self.installed or 'missing'} (locked {self.locked})"


def _same_version(locked: str, installed: str | None) -> bool:
    if installed is None or locked == installed:
        return locked == installed
    try:  # the same version spelled differently (1.0, 1.0.0); packaging is locked (mlflow needs it)
        from packaging.version import Version

        return Version(locked) == Version(installed)
    except (ImportError, ValueError):  # InvalidVersion is a ValueError
        return False


def lock_differences(locked: dict[str, str], installed: dict[str, str] | None = None) -> list[LockDifference]:
    """Every locked package not installed at exactly its locked version."""
    have = installed_versions() if installed is None else installed
    return [
        LockDifference(name, version, have.get(name))
        for name, version in sorted(locked.items())
        if not _same_version(version, have.get(name))
    ]
