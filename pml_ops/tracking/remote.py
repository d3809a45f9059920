"""The team's shared S3-compatible store: one bucket for DVC's data, models and run cache, and for
the MLflow server's artifacts.

One setting, in the environment, points both at it (README: Sharing results):

    PML_OPS_REMOTE_URL=s3://BUCKET/PREFIX   DVC stores under PREFIX/dvc, MLflow under PREFIX/mlflow
    AWS_ENDPOINT_URL=http://minio:9000      a non-AWS server (MinIO, Ceph, ...); unset for AWS S3
    AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)

AWS_* are the variables boto3, DVC's S3 remote and MLflow's S3 artifact store read themselves;
credentials are never written to a file by this module.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pml_ops.core.errors import PmlOpsError

URL_ENV = "PML_OPS_REMOTE_URL"
ENDPOINT_ENV = "AWS_ENDPOINT_URL"
REMOTE_NAME = "shared"
PROBE_TIMEOUT_S = 5.0


class RemoteError(PmlOpsError):
    """The shared store is not configured, or does not answer (endpoint, credentials, bucket)."""


@dataclass(frozen=True)
class SharedStore:
    """`url` is s3://bucket[/prefix]; `endpoint_url` is None for AWS S3 itself."""

    url: str
    endpoint_url: str | None = None

    def __post_init__(self) -> None:
        parsed = urllib.parse.urlparse(self.url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise RemoteError(
                f"{self.url!r} is not an S3 URL.\n  Fix: set {URL_ENV} to s3://BUCKET/PREFIX "
                "(for MinIO and other S3-compatible servers too, with AWS_ENDPOINT_URL)."
            )

    @property
    def dvc_url(self) -> str:
        return self.url.rstrip("/") + "/dvc"

    @property
    def mlflow_url(self) -> str:
        return self.url.rstrip("/") + "/mlflow"


def from_environment(env: Mapping[str, str] = os.environ) -> SharedStore:
    """The store $PML_OPS_REMOTE_URL and $AWS_ENDPOINT_URL name; RemoteError when unset."""
    url = env.get(URL_ENV, "").strip()
    if not url:
        raise RemoteError(
            f"{URL_ENV} is not set.\n  Fix: export {URL_ENV}=s3://BUCKET/PREFIX (and "
            f"{ENDPOINT_ENV} for a MinIO or other non-AWS server), or pass the URL."
        )
    return SharedStore(url, env.get(ENDPOINT_ENV) or None)


def configure_dvc(store: SharedStore, project: Path, local: bool = True) -> list[list[str]]:
    """Make `shared` (at store.dvc_url) the default DVC remote; return the dvc commands run.

    `local` writes .dvc/config.local (this checkout only, never committed); otherwise .dvc/config,
    which the team commits (it holds a URL, never a credential). Downloads are verified by hash.
    """
    scope = ["--local"] if local else []
    commands = [
        ["remote", "add", *scope, "--force", "--default", REMOTE_NAME, store.dvc_url],
        ["remote", "modify", *scope, REMOTE_NAME, "verify", "true"],
    ]
    if store.endpoint_url:
        commands.append(["remote", "modify", *scope, REMOTE_NAME, "endpointurl", store.endpoint_url])
    for command in commands:
        result = subprocess.run(
            [sys.executable, "-m", "dvc", *command], cwd=project, capture_output=True, text=True
        )
        if result.returncode != 0:
            raise RemoteError(f"`dvc {' '.join(command)}` failed: {result.stderr.strip()}")
    return [["dvc", *command] for command in commands]


@dataclass(frozen=True)
class DvcRemote:
    name: str
    url: str
    settings: dict[str, str]


def default_dvc_remote(project: Path) -> DvcRemote | None:
    """The default DVC remote with its merged settings (project and local config), or None."""
    from dvc.repo import Repo  # deferred: ~0.3 s at import; `pml-ops` imports this module for every command

    with Repo(str(project)) as repo:
        name = repo.config["core"].get("remote")
        if not name:
            return None
        settings = {key: str(value) for key, value in repo.config["remote"][name].items()}
    return DvcRemote(name, settings["url"], settings)


def probe_s3(
    url: str,
    endpoint_url: str | None = None,
    settings: Mapping[str, str] | None = None,
    timeout_s: float = PROBE_TIMEOUT_S,
) -> None:
    """Raise RemoteError within about `timeout_s` unless the bucket of `url` answers and the
    credentials may list it. `settings` are DVC remote settings (access_key_id, profile, ...)."""
    # deferred: ~0.2 s at import; `pml-ops` imports this module for every command
    import boto3
    import botocore.exceptions
    from botocore.config import Config

    settings = settings or {}
    bucket = urllib.parse.urlparse(url).netloc
    endpoint = endpoint_url or settings.get("endpointurl") or os.environ.get(ENDPOINT_ENV) or None
    where = endpoint or "AWS S3"
    session = boto3.session.Session(
        profile_name=settings.get("profile"),
        aws_access_key_id=settings.get("access_key_id"),
        aws_secret_access_key=settings.get("secret_access_key"),
        region_name=settings.get("region"),
    )
    client = session.client(
        "s3",
        endpoint_url=endpoint,
        config=Config(connect_timeout=timeout_s, read_timeout=timeout_s, retries={"total_max_attempts": 1}),
    )
    credentials_fix = (
        "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) to keys the store "
        "accepts, or `dvc remote modify --local NAME access_key_id ...`"
    )
    try:
        client.list_objects_v2(Bucket=bucket, MaxKeys=1)
    except botocore.exceptions.NoCredentialsError:
        raise RemoteError(f"no S3 credentials found for {url}.\n  Fix: {credentials_fix}") from None
    except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError) as error:
        raise RemoteError(
            f"S3 endpoint {where} is unreachable ({error}).\n  Fix: start the server or correct "
            f"{ENDPOINT_ENV} (or the remote's endpointurl), and check the network."
        ) from None
    except botocore.exceptions.ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchBucket", "404"):
            raise RemoteError(
                f"bucket '{bucket}' does not exist on {where}.\n  Fix: create it (`aws s3 mb "
                f"s3://{bucket}` or MinIO's `mc mb ALIAS/{bucket}`), or correct the URL {url}."
            ) from None
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"):
            raise RemoteError(
                f"{where} refused the credentials for {url} ({code}).\n  Fix: {credentials_fix}"
            ) from None
        raise RemoteError(f"{url} on {where}: {code or error}") from None
    except botocore.exceptions.BotoCoreError as error:
        raise RemoteError(f"{url} on {where}: {error}") from None


def check_default_remote(project: Path, timeout_s: float = PROBE_TIMEOUT_S) -> str:
    """Probe the default DVC remote (S3 within `timeout_s`; a local directory exists or can be
    made); return a one-line description, or raise RemoteError with the fix."""
    remote = default_dvc_remote(project)
    if remote is None:
        raise RemoteError(
            "no default DVC remote.\n  Fix: `pml-ops remote set s3://BUCKET/PREFIX` "
            "(or `dvc remote add -d NAME URL`)."
        )
    if remote.url.startswith("s3://"):
        probe_s3(remote.url, settings=remote.settings, timeout_s=timeout_s)
        endpoint = remote.settings.get("endpointurl") or os.environ.get(ENDPOINT_ENV) or "AWS S3"
        return f"remote '{remote.name}' ({remote.url} on {endpoint}) answers"
    return f"remote '{remote.name}' ({remote.url}) not probed (only S3 remotes are)"
