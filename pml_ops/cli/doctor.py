"""`pml-ops doctor`: check the environment a run needs, one line per check, each with a fix.

Every check returns a `Check`; none raises. A failed *essential* check (a run would fail) makes
the command exit non-zero; a warning (e.g. the data is not fetched yet on a fresh clone) does not.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sqlite3
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from pml_ops.config import Params, load_params
from pml_ops.core.errors import PmlOpsError
from pml_ops.data.mnist import load_mnist
from pml_ops.tracking.provenance import (
    DEV_LOCK,
    RUNTIME_LOCK,
    dvc_output_md5,
    installed_versions,
    lock_differences,
    locked_versions,
)
from pml_ops.tracking.remote import RemoteError, check_default_remote
from pml_ops.tracking.store import check_server, is_server, tracking_uri

MIN_PYTHON = (3, 11)
ARTIFACTS_TIMEOUT_S = 10.0
USER_ENV, PASSWORD_ENV = "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"
INSTALL_FIX = "run `scripts/install.sh` (or `make install`) in the project directory"
LOCK_FIX = "run `make install` (scripts/install.sh) in the project directory: it installs the lock"
SHOWN_DIFFERENCES = 5


class Status(Enum):
    OK = "✓"
    WARN = "!"
    FAIL = "✗"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""

    def render(self) -> str:
        line = f"{self.status.value} {self.name}: {self.detail}"
        if self.status is not Status.OK and self.fix:
            line += f"\n    fix: {self.fix}"
        return line


def check_python(version: tuple[int, ...] = tuple(sys.version_info[:3])) -> Check:
    text = ".".join(str(part) for part in version[:3])
    if tuple(version[:2]) < MIN_PYTHON:
        want = ".".join(map(str, MIN_PYTHON))
        return Check("python", Status.FAIL, f"{text} is too old", f"use Python {want} or newer")
    return Check("python", Status.OK, f"{text} ({sys.executable})")


def check_torch() -> Check:
    try:
        import torch  # the import is the check: a missing or broken torch is reported, not raised
    except ImportError as error:
        return Check("torch", Status.FAIL, f"not importable ({error})", INSTALL_FIX)
    if torch.cuda.is_available():
        device = f"CUDA ({torch.cuda.get_device_name(0)}, {torch.cuda.device_count()} device(s))"
    else:
        device = "CPU (no CUDA device visible)"
    return Check("torch", Status.OK, f"{torch.__version__}, device {device}")


def check_lock(project: Path, installed: dict[str, str] | None = None) -> Check:
    """The installed distributions are the lock's, name and version: requirements/dev.txt's where
    a tool of the dev extra is installed, else requirements/runtime.txt's (the images)."""
    name = "packages"
    if not (project / RUNTIME_LOCK).is_file():
        return Check(
            name, Status.WARN, f"no lock file {RUNTIME_LOCK} in {project}", "run from the project root"
        )
    have = installed_versions() if installed is None else installed
    lock, locked = RUNTIME_LOCK, locked_versions(project / RUNTIME_LOCK)
    if (project / DEV_LOCK).is_file():
        dev = locked_versions(project / DEV_LOCK)
        if any(tool in have for tool in dev.keys() - locked.keys()):
            lock, locked = DEV_LOCK, dev
    differences = lock_differences(locked, have)
    builds = [d for d in differences if d.other_build_only]
    others = [d for d in differences if not d.other_build_only]
    detail = f"the {len(locked)} packages of {lock} at their locked versions"
    if builds:
        detail += "; " + ", ".join(f"{d.name} {d.installed}: another build of {d.locked}" for d in builds)
    if not others:
        return Check(name, Status.OK, detail)
    shown = ", ".join(str(d) for d in others[:SHOWN_DIFFERENCES])
    if len(others) > SHOWN_DIFFERENCES:
        shown += f" and {len(others) - SHOWN_DIFFERENCES} more"
    return Check(name, Status.WARN, f"{len(others)} of {len(locked)} differ from {lock}: {shown}", LOCK_FIX)


def check_params(params_file: Path) -> tuple[Check, Params | None]:
    try:
        params = load_params(params_file)
    except PmlOpsError as error:
        detail = str(error).replace("\n", "\n    ")
        fix = f"correct the keys named above in {params_file} (`pml-ops validate` re-checks)"
        return Check("params", Status.FAIL, detail, fix), None
    return Check("params", Status.OK, f"{params_file} is valid"), params


def check_tracking(uri: str) -> Check:
    """The MLflow store answers: a server's /health, or the SQLite file is a usable database."""
    name = "mlflow store"
    if is_server(uri):
        try:
            check_server(uri)
        except PmlOpsError as error:
            message, _, fix = str(error).partition("\n  Fix: ")
            return Check(name, Status.FAIL, message, fix)
        return Check(name, Status.OK, f"server {uri} is reachable")
    if uri.startswith("sqlite:///"):
        path = Path(urllib.parse.unquote(uri[len("sqlite:///") :]))
        if not path.exists():
            if path.parent.is_dir():
                return Check(name, Status.OK, f"{uri} (created by the first tracked run)")
            return Check(name, Status.FAIL, f"{path.parent} does not exist", "create it or fix tracking.uri")
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=3) as db:
                db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as error:
            fix = f"move {path} aside (it is not an MLflow database) or point tracking.uri elsewhere"
            return Check(name, Status.FAIL, f"{path} is unusable ({error})", fix)
        return Check(name, Status.OK, f"{uri}")
    return Check(name, Status.WARN, f"{uri}: not checked (only sqlite and http(s) stores are)")


def check_artifacts(uri: str, timeout_s: float = ARTIFACTS_TIMEOUT_S) -> Check:
    """A tracking server's proxied artifact store answers: lists its root, with the credentials
    of MLFLOW_TRACKING_USERNAME/PASSWORD when the server requires a login."""
    name = "mlflow artifacts"
    request = urllib.request.Request(uri.rstrip("/") + "/api/2.0/mlflow-artifacts/artifacts?path=")
    user, password = os.environ.get(USER_ENV), os.environ.get(PASSWORD_ENV)
    if user and password:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s):
            return Check(name, Status.OK, f"the server's artifact store answers ({uri})")
    except urllib.error.HTTPError as error:
        code = error.code
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        fix = "check the server's MLFLOW_ARTIFACTS_DESTINATION, its S3 credentials and endpoint"
        return Check(name, Status.FAIL, f"no answer within {timeout_s:g} s ({reason})", fix)
    if code == 401:
        fix = f"set {USER_ENV} and {PASSWORD_ENV} to an account on the server (ask its admin)"
        return Check(name, Status.FAIL, f"{uri} requires a login", fix)
    if code == 403:
        return Check(name, Status.FAIL, f"{uri} refused user '{user}'", "ask the server's admin")
    if code == 404:
        fix = "start the server with --serve-artifacts (docker/mlflow-server.sh does)"
        return Check(name, Status.WARN, f"{uri} does not proxy artifacts", fix)
    fix = "check the server's MLFLOW_ARTIFACTS_DESTINATION, its S3 credentials and endpoint (server log)"
    return Check(name, Status.FAIL, f"the server cannot use its artifact store (HTTP {code})", fix)


def _dvc_remote(project: Path) -> tuple[str, str, Callable[[], bool]] | None:
    """(name, url, exists) of the default DVC remote, or None when none is configured."""
    from dvc.repo import Repo  # deferred: ~0.3 s at import; every `pml-ops` command loads this module

    with Repo(str(project)) as repo:
        name = repo.config["core"].get("remote")
        if not name:
            return None
        odb = repo.cloud.get_remote_odb(name)
        url = repo.config["remote"][name]["url"]
        fs, path = odb.fs, odb.path
        return name, url, lambda: fs.exists(path)


def check_dvc(project: Path) -> Check:
    """The project is a DVC repository with a default remote that exists (or can be created)."""
    name = "dvc"
    if not (project / ".dvc").is_dir():
        return Check(name, Status.FAIL, f"{project} is not a DVC repository", "run from the project root")
    try:
        remote = _dvc_remote(project)
    except Exception as error:  # DVC raises many types for a broken config
        return Check(name, Status.FAIL, f"DVC configuration unusable ({error})", "fix .dvc/config")
    if remote is None:
        return Check(
            name, Status.WARN, "no default remote (dvc push/pull disabled)", "dvc remote add -d NAME URL"
        )
    remote_name, url, exists = remote
    if url.startswith("s3://"):  # probed with a bounded timeout, not DVC's minutes of retries
        try:
            return Check(name, Status.OK, f"default {check_default_remote(project)}")
        except RemoteError as error:
            message, _, fix = str(error).partition("\n  Fix: ")
            return Check(name, Status.FAIL, message, fix)
    try:
        if exists():
            return Check(name, Status.OK, f"default remote '{remote_name}' ({url}) is reachable")
    except Exception as error:  # network and credential errors from any DVC filesystem
        fix = f"check the URL and credentials of remote '{remote_name}' (`dvc remote modify`)"
        return Check(name, Status.FAIL, f"remote '{remote_name}' ({url}) unreachable: {error}", fix)
    if "://" not in url:  # a local directory remote is created by the first `dvc push`
        return Check(name, Status.OK, f"default remote '{remote_name}' ({url}, created by `dvc push`)")
    fix = f"create it, or point '{remote_name}' elsewhere (`dvc remote modify {remote_name} url ...`)"
    return Check(name, Status.FAIL, f"remote '{remote_name}' ({url}) does not exist", fix)


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def check_data(project: Path, params: Params | None) -> Check:
    """The MNIST artifact is present, loads with the expected arrays and matches dvc.lock."""
    relative = params.data.path if params is not None else "data/mnist.npz"
    path = project / relative
    if not path.exists():
        fix = "run `dvc repro prepare` (or `dvc pull` if a remote holds it)"
        return Check("data", Status.WARN, f"{relative} not present yet", fix)
    try:
        data = load_mnist(path)
    except PmlOpsError as error:
        return Check("data", Status.FAIL, str(error), f"delete {relative} and run `dvc repro prepare`")
    detail = f"{relative} ({len(data.y_train)} train, {len(data.y_test)} test)"
    locked = dvc_output_md5(relative, project)
    if locked != "unknown" and _md5(path) != locked:
        fix = f"`dvc checkout {relative}` restores the locked version; `dvc repro prepare` rebuilds it"
        return Check("data", Status.WARN, f"{detail} differs from dvc.lock", fix)
    return Check("data", Status.OK, detail)


def run_checks(params_file: Path, project: Path | None = None) -> list[Check]:
    root = Path.cwd() if project is None else project
    params_check, params = check_params(params_file)
    checks = [check_python(), check_torch(), check_lock(root), params_check]
    if params is not None:
        uri = tracking_uri(params.tracking, root)
        checks.append(check_tracking(uri))
        if checks[-1].status is Status.OK and is_server(uri):
            checks.append(check_artifacts(uri))
    else:
        checks.append(Check("mlflow store", Status.WARN, "not checked: params invalid", "fix params first"))
    checks += [check_dvc(root), check_data(root, params)]
    return checks


def doctor(params_file: Path, project: Path | None = None) -> int:
    """Print every check; return 1 if an essential one failed, else 0."""
    checks = run_checks(params_file, project)
    for check in checks:
        print(check.render(), flush=True)
    failed = [check.name for check in checks if check.status is Status.FAIL]
    if failed:
        print(f"\n{len(failed)} problem(s): {', '.join(failed)}")
        return 1
    print("\nall essential checks passed")
    return 0
