"""A local S3-compatible server for the sharing tests: moto's server on 127.0.0.1 (its own process
group, ended with it), with IAM on, a bucket, a read-write and a read-only user; and a TCP proxy
that can stop mid-upload, as a server that goes away does.

Run as a script, this module is that proxy: `python -m tests.helpers.s3_helpers LISTEN TARGET [MAX_BYTES]`
forwards 127.0.0.1:LISTEN to 127.0.0.1:TARGET and kills itself (every connection with it) once it
has forwarded MAX_BYTES from clients.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO_ROOT, VENV_BIN

BUCKET = "team"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{process.args} exited ({process.returncode})")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on port {port} after {timeout_s} s")


def start_group(command: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )


def stop_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass


@dataclass(frozen=True)
class Keys:
    access_key_id: str
    secret_access_key: str

    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key}


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    writer: Keys
    reader: Keys

    def client(self, keys: Keys | None = None):
        import boto3

        keys = keys or self.writer
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=keys.access_key_id,
            aws_secret_access_key=keys.secret_access_key,
        )

    def env(self, keys: Keys | None = None, endpoint: str | None = None) -> dict[str, str]:
        """What a team member exports: endpoint, region and keys (the writer's by default)."""
        return {
            "AWS_ENDPOINT_URL": endpoint or self.endpoint,
            "AWS_DEFAULT_REGION": REGION,
            **(keys or self.writer).env(),
        }

    def keys(self, prefix: str) -> dict[str, bytes]:
        client = self.client()
        found = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            for item in page.get("Contents", []):
                found[item["Key"]] = client.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
        return found


def _policy(actions: list[str]) -> str:
    statement = {"Effect": "Allow", "Action": actions, "Resource": "*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def start_s3(tmp_path: Path) -> Iterator[S3Server]:
    """moto's server with a bucket, a writer (s3:*) and a reader (get and list only); IAM
    enforced from then on, so wrong keys are refused as by AWS or MinIO."""
    import boto3

    port = free_port()
    server = start_group(
        [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], tmp_path / "moto.log"
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port, server)
        root = {"endpoint_url": endpoint, "region_name": REGION}
        root_keys = {"aws_access_key_id": "bootstrap", "aws_secret_access_key": "bootstrap"}
        boto3.client("s3", **root, **root_keys).create_bucket(Bucket=BUCKET)
        iam = boto3.client("iam", **root, **root_keys)
        users = {}
        for name, actions in (("writer", ["s3:*"]), ("reader", ["s3:GetObject", "s3:ListBucket"])):
            iam.create_user(UserName=name)
            iam.put_user_policy(UserName=name, PolicyName="s3", PolicyDocument=_policy(actions))
            key = iam.create_access_key(UserName=name)["AccessKey"]
            users[name] = Keys(key["AccessKeyId"], key["SecretAccessKey"])
        request = urllib.request.Request(
            f"{endpoint}/moto-api/reset-auth", data=b"0", headers={"Content-Type": "text/plain"}
        )
        urllib.request.urlopen(request, timeout=10).read()  # IAM checks every request from now on
        yield S3Server(endpoint, users["writer"], users["reader"])
    finally:
        stop_group(server)


def start_proxy(listen: int, target: int, log: Path, max_bytes: int | None = None) -> subprocess.Popen:
    command = [sys.executable, "-m", "tests.helpers.s3_helpers", str(listen), str(target)]
    if max_bytes is not None:
        command.append(str(max_bytes))
    proxy = start_group(command, log, env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    wait_for_port(listen, proxy)
    return proxy


def md5_of(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def assert_objects_intact(objects: dict[str, bytes]) -> None:
    """DVC names each object in its remote by the md5 of its content (files/md5/AB/CDEF...):
    every object present must be whole, none a torn upload."""
    for key, body in objects.items():
        if "/files/md5/" in key:
            digest = "".join(key.split("/files/md5/")[1].split("/")).removesuffix(".dir")
            assert md5_of(body) == digest, f"{key} holds {len(body)} bytes that do not match its name"


def _proxy(listen: int, target: int, max_bytes: float) -> None:
    forwarded = 0
    lock = threading.Lock()

    def pump(source: socket.socket, sink: socket.socket, upstream: bool) -> None:
        nonlocal forwarded
        try:
            while chunk := source.recv(65536):
                if upstream:
                    with lock:
                        forwarded += len(chunk)
                        if forwarded > max_bytes:
                            os._exit(1)  # the server goes away mid-upload
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    server = socket.create_server(("127.0.0.1", listen))
    while True:
        client, _ = server.accept()
        upstream = socket.create_connection(("127.0.0.1", target))
        threading.Thread(target=pump, args=(client, upstream, True), daemon=True).start()
        threading.Thread(target=pump, args=(upstream, client, False), daemon=True).start()


if __name__ == "__main__":
    limit = float(sys.argv[3]) if len(sys.argv) > 3 else float("inf")
    _proxy(int(sys.argv[1]), int(sys.argv[2]), limit)
