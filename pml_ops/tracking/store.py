"""One MLflow set-up for every stage: the same tracking URI, experiment and store lock."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import filelock

from pml_ops.config import TrackingParams
from pml_ops.core.errors import TrackingError
from pml_ops.tracking.provenance import project_root

URI_ENV = "MLFLOW_TRACKING_URI"
# The experiment kind MLflow 3's UI reads: this one opens the experiment on its training runs
# instead of the GenAI overview.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
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
API_PROBE = "/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default"
API_TIMEOUT_S = 10.0
LOCK_TIMEOUT_S = 120.0  # set-up takes well under a second; this only bounds a stuck holder
LOCKED_ATTEMPTS = 6  # "database is locked" retries: about 10 s in all
T = TypeVar("T")


def resolve_uri(uri: str, project_dir: Path) -> str:
    """Make a relative `sqlite:///file` URI absolute so every stage and the UI share one store."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str((project_dir / uri[len(prefix) :]).resolve())
    return uri


def tracking_uri(params: TrackingParams, project_dir: Path | None = None) -> str:
    """$MLFLOW_TRACKING_URI if set, else params.yaml's `tracking.uri` (embedded SQLite, a relative
    path taken from `project_dir`, by default `project_root()`)."""
    project = project_root() if project_dir is None else project_dir
    return os.environ.get(URI_ENV) or resolve_uri(params.uri, project)


def is_local_store(uri: str) -> bool:
    return uri.startswith("sqlite:")


def is_server(uri: str) -> bool:
    return urllib.parse.urlparse(uri).scheme in ("http", "https")


def _ask(url: str, timeout_s: float) -> str | None:
    """None if `url` answers below HTTP 500 within `timeout_s` (a proxy or an auth layer may answer
    401/404), else why not."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s):
            return None
    except urllib.error.HTTPError as error:
        if error.code < 500:
            return None
        return f"HTTP {error.code} {error.reason}"
    except (urllib.error.URLError, OSError) as error:
        return str(getattr(error, "reason", error))


def check_server(
    uri: str, timeout_s: float = PREFLIGHT_TIMEOUT_S, api_timeout_s: float = API_TIMEOUT_S
) -> None:
    """Raise TrackingError within about `timeout_s` + `api_timeout_s` if the tracking server at
    `uri` does not answer: first its `/health` endpoint, then one cheap call of its REST API (a
    server whose health check answers while its API hangs, e.g. on a stuck database, fails here
    in seconds instead of after MLflow's retries). The API gets longer: a fresh server's first
    call sets up its store."""
    fix = (
        f"  Fix: start it (e.g. `mlflow server --host 127.0.0.1 --port PORT`), check the address, "
        f"or unset {URI_ENV} to use the project's embedded SQLite store."
    )
    reason = _ask(uri.rstrip("/") + "/health", timeout_s)
    if reason is not None:
        raise TrackingError(f"MLflow tracking server {uri} is unreachable ({reason}).\n{fix}")
    api = uri.rstrip("/") + API_PROBE
    reason = _ask(api, api_timeout_s)
    if reason is not None:
        raise TrackingError(
            f"MLflow tracking server {uri} answers /health but its API does not ({reason} after "
            f"asking {API_PROBE}): the server's backend store may be down or locked.\n{fix}"
        )


def store_lock(uri: str) -> filelock.FileLock:
    """A lock that serialises setting up the store at `uri` among the processes of this machine.

    For a SQLite store it is `<file>.lock` beside the database (every process that opens that
    file agrees on it); for any other store a file in the temporary directory named by the URI.
    """
    if uri.startswith("sqlite:///"):
        database = Path(uri[len("sqlite:///") :].split("?", 1)[0])
        path = database.with_name(database.name + ".lock")
        path.parent.mkdir(parents=True, exist_ok=True)
    else:
        digest = hashlib.sha256(uri.encode()).hexdigest()[:16]
        path = Path(tempfile.gettempdir()) / f"pml-ops-store-{digest}.lock"
    return filelock.FileLock(path, timeout=LOCK_TIMEOUT_S, mode=0o666)


@contextlib.contextmanager
def holding(lock: filelock.FileLock, what: str) -> Iterator[None]:
    """Hold `lock`; a lock that stays taken past its timeout is a TrackingError, not a hang."""
    try:
        with lock:
            yield
    except filelock.Timeout:
        raise TrackingError(
            f"{what}: waited {lock.timeout:g} s for {lock.lock_file}, held by another process; "
            "if none is running, delete that file"
        ) from None


def is_locked_error(error: BaseException) -> bool:
    return "database is locked" in str(error) or "database table is locked" in str(error)


def is_upsert_race(error: BaseException) -> bool:
    """A unique-key error from a store that inserts a row another process inserted a moment ago
    (PostgreSQL's and SQLite's wording), or SQLite's lock on the same kind of race."""
    text = str(error)
    return (
        "duplicate key value violates unique constraint" in text
        or "UNIQUE constraint failed" in text
        or is_locked_error(error)
    )


def retry_locked(
    call: Callable[[], T],
    what: str,
    attempts: int = LOCKED_ATTEMPTS,
    retryable: Callable[[BaseException], bool] = is_locked_error,
) -> T:
    """Run `call`, retrying briefly while the store refuses a write that raced another process's
    (by default SQLite's "database is locked"; `retryable` says which errors are such a race);
    other errors pass through at once."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as error:
            if not retryable(error):
                raise
            if attempt == attempts:
                raise TrackingError(
                    f"{what}: the store refused the write through {attempts} attempts ({error})"
                ) from None
            time.sleep(min(0.2 * 2**attempt, 4.0) * (0.5 + random.random()))
    raise AssertionError("unreachable")


def set_shared_tag(client: Any, run_id: str, key: str, value: str, attempts: int = LOCKED_ATTEMPTS) -> None:
    """`client.set_tag` on a run that other processes tag at the same time (tuning workers on one
    study's run). MLflow's stores look the tag up and then insert it, so of two workers setting a
    new tag together one gets a unique-key error; by then the row exists, and the retry updates it."""
    retry_locked(
        lambda: client.set_tag(run_id, key, value), f"tagging run {run_id}", attempts, is_upsert_race
    )


def configure(params: TrackingParams, project_dir: Path | None = None) -> str:
    """Point MLflow at the project's store and experiment; return the experiment id.

    For the embedded SQLite store the experiment's artifacts go to `tracking.artifact_root`
    inside the project; a tracking server decides its own artifact location. A server that does
    not answer is reported at once (TrackingError) instead of after MLflow's retry loop. The
    experiment is tagged as a model-development one, so MLflow's UI opens on its runs.
    """
    project = project_root() if project_dir is None else project_dir
    uri = tracking_uri(params, project)
    if is_server(uri):
        check_server(uri)
        for name, value in MLFLOW_HTTP_DEFAULTS.items():
            os.environ.setdefault(name, value)

    import mlflow  # deferred: ~1.3 s at import; `pml-ops ui` and `doctor` use this module without it

    mlflow.set_tracking_uri(uri)
    # Opening a fresh SQLite store creates its tables (MLflow's migrations): processes doing that
    # at once collide ("duplicate column name"), so set-up and the experiment are made under a lock.
    with holding(store_lock(uri), f"setting up the MLflow store {uri}"):
        experiment = retry_locked(lambda: mlflow.get_experiment_by_name(params.experiment), "MLflow")
        if experiment is not None:
            experiment_id = experiment.experiment_id
        else:
            location = None
            if is_local_store(uri):
                location = (project / params.artifact_root).resolve().as_uri()
            experiment_id = mlflow.create_experiment(params.experiment, artifact_location=location)
        if (experiment.tags if experiment is not None else {}).get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
            retry_locked(
                lambda: mlflow.MlflowClient().set_experiment_tag(
                    experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND
                ),
                "MLflow",
            )
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id
