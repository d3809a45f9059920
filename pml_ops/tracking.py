"""One MLflow set-up for every stage: the same tracking URI, experiment and provenance tags."""

from __future__ import annotations

import os
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

from pml_ops.config import TrackingParams
from pml_ops.errors import TrackingError

URI_ENV = "MLFLOW_TRACKING_URI"
PREFLIGHT_TIMEOUT_S = 3.0
PROXIED_ARTIFACTS = {
    "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD": "false",
    "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": "false",
}
# MLflow's own defaults (7 retries with exponential backoff, 120 s timeout) turn a server that
# goes away mid-run into minutes of silence; these bound it to seconds. A user's setting wins.
MLFLOW_HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    # A server with an S3 artifact store offers presigned URLs into the bucket; clients outside
    # the server's network cannot reach it (e.g. http://minio:9000), so artifacts go through it.
    **PROXIED_ARTIFACTS,
}


def resolve_uri(uri: str, project_dir: Path) -> str:
    """Make a relative `sqlite:///file` URI absolute so every stage and the UI share one store."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str((project_dir / uri[len(prefix) :]).resolve())
    return uri


def tracking_uri(params: TrackingParams, project_dir: Path | None = None) -> str:
    """$MLFLOW_TRACKING_URI if set, else params.yaml's `tracking.uri` (embedded SQLite)."""
    project = Path.cwd() if project_dir is None else project_dir
    return os.environ.get(URI_ENV) or resolve_uri(params.uri, project)


def is_local_store(uri: str) -> bool:
    return uri.startswith("sqlite:")


def is_server(uri: str) -> bool:
    return urllib.parse.urlparse(uri).scheme in ("http", "https")


def check_server(uri: str, timeout_s: float = PREFLIGHT_TIMEOUT_S) -> None:
    """Raise TrackingError within about `timeout_s` if the tracking server at `uri` does not answer.

    Asks the server's `/health` endpoint. Any HTTP answer below 500 counts as reachable (a proxy or
    an auth layer may answer 401/404 there); a refused or timed-out connection or a 5xx does not.
    """
    health = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(health, timeout=timeout_s):
            return
    except urllib.error.HTTPError as error:
        if error.code < 500:
            return
        reason = f"HTTP {error.code} {error.reason}"
    except (urllib.error.URLError, OSError) as error:
        reason = str(getattr(error, "reason", error))
    raise TrackingError(
        f"MLflow tracking server {uri} is unreachable ({reason}).\n"
        f"  Fix: start it (e.g. `mlflow server --host 127.0.0.1 --port PORT`), check the address, "
        f"or unset {URI_ENV} to use the project's embedded SQLite store."
    )


def configure(params: TrackingParams, project_dir: Path | None = None) -> str:
    """Point MLflow at the project's store and experiment; return the experiment id.

    For the embedded SQLite store the experiment's artifacts go to `tracking.artifact_root`
    inside the project; a tracking server decides its own artifact location. A server that does
    not answer is reported at once (TrackingError) instead of after MLflow's retry loop.
    """
    project = Path.cwd() if project_dir is None else project_dir
    uri = tracking_uri(params, project)
    if is_server(uri):
        check_server(uri)
        for name, value in MLFLOW_HTTP_DEFAULTS.items():
            os.environ.setdefault(name, value)

    import mlflow  # heavy import, only when tracking is used

    mlflow.set_tracking_uri(uri)
    experiment = mlflow.get_experiment_by_name(params.experiment)
    if experiment is not None:
        experiment_id = experiment.experiment_id
    else:
        location = None
        if is_local_store(uri):
            location = (project / params.artifact_root).resolve().as_uri()
        experiment_id = mlflow.create_experiment(params.experiment, artifact_location=location)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


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
        stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
    except (OSError, yaml.YAMLError):
        return "unknown"
    for stage in stages.values():
        for out in stage.get("outs", []):
            if out.get("path") == output and "md5" in out:
                return str(out["md5"])
    return "unknown"
