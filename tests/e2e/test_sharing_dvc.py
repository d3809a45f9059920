"""The team's shared S3 bucket as the DVC remote, on a local S3 server (moto, IAM enforced): the
reduced pipeline's data, models and run cache are pushed; a fresh clone pulls them with read-only
keys, is clean and reruns nothing; an experiment travels through a bare git repository and the
bucket; and each fault (wrong keys, unreachable endpoint, missing bucket, a server that dies
mid-upload) ends with one clear line and leaves the bucket consistent."""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import pytest
import yaml

from pml_ops.cli.doctor import Status, check_dvc
from pml_ops.tracking.remote import RemoteError, SharedStore, from_environment
from tests.conftest import copy_clone, run
from tests.helpers.s3_helpers import (
    BUCKET,
    S3Server,
    assert_objects_intact,
    free_port,
    md5_of,
    start_proxy,
    stop_group,
)

pytestmark = pytest.mark.e2e
PML_OPS = [sys.executable, "-m", "pml_ops.cli.main"]


def _clean_env(base: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in base.items() if not k.startswith(("AWS_", "PML_OPS_REMOTE"))}
    env["HOME"] = str(Path(env.get("TMPDIR", "/tmp")))  # no ~/.aws of the machine's user
    return env


def _cached_md5s(project: Path) -> set[str]:
    """The md5 of every data, model and figure output in dvc.lock (metrics live in git)."""
    stages = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    outs = [out for stage in stages.values() for out in stage.get("outs", [])]
    cached = [out for out in outs if out["path"].startswith(("data/", "models/", "figures/"))]
    assert cached
    return {out["md5"].removesuffix(".dir") for out in cached}


def test_store_settings_are_validated():
    with pytest.raises(RemoteError, match="PML_OPS_REMOTE_URL is not set"):
        from_environment({})
    with pytest.raises(RemoteError, match="is not an S3 URL"):
        SharedStore("https://bucket.example/x")
    store = from_environment({"PML_OPS_REMOTE_URL": "s3://b/study/", "AWS_ENDPOINT_URL": "http://m:9000"})
    assert (store.dvc_url, store.mlflow_url, store.endpoint_url) == (
        "s3://b/study/dvc",
        "s3://b/study/mlflow",
        "http://m:9000",
    )


def test_remote_command_names_what_is_missing(tmp_path: Path, stage_env):
    env = _clean_env(stage_env)
    run(["git", "init", "-q"], tmp_path)
    run(["dvc", "init", "-q"], tmp_path, env)
    check = run([*PML_OPS, "remote", "check"], tmp_path, env, check=False)
    assert check.returncode == 2 and "no default DVC remote" in _one_clear_line(check)
    unset = run([*PML_OPS, "remote", "set"], tmp_path, env, check=False)
    assert unset.returncode == 2 and "PML_OPS_REMOTE_URL is not set" in _one_clear_line(unset)
    wrong = run([*PML_OPS, "remote", "set", "https://example.org/bucket"], tmp_path, env, check=False)
    assert wrong.returncode == 2 and "is not an S3 URL" in _one_clear_line(wrong)
    assert not (tmp_path / ".dvc" / "config.local").exists()


def test_team_pushes_a_fresh_clone_pulls_and_reruns_nothing(pipeline_run, s3: S3Server, tmp_path: Path):
    clone, _, pipeline_env = pipeline_run
    work = copy_clone(clone, tmp_path / "work")
    env = {**_clean_env(pipeline_env), **s3.env(), "PML_OPS_REMOTE_URL": f"s3://{BUCKET}/study"}

    # One setting: the environment. `remote set --project` writes only the URL and endpoint to
    # .dvc/config, which the team commits.
    configured = run([*PML_OPS, "remote", "set", "--project"], work, env)
    assert "remote 'shared' (s3://team/study/dvc" in configured.stdout
    config = (work / ".dvc" / "config").read_text()
    assert s3.writer.secret_access_key not in config and s3.writer.access_key_id not in config
    run(["git", "add", "-A"], work)  # the reproduced dvc.lock and metrics, and the remote
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "study, shared remote"], work)

    pushed = run(["dvc", "push", "--run-cache"], work, env)
    objects = s3.keys("study/dvc/")
    assert_objects_intact(objects)
    stored = {
        key.split("/files/md5/")[1].replace("/", "").removesuffix(".dir")
        for key in objects
        if "/files/md5/" in key
    }
    assert _cached_md5s(work) <= stored, pushed.stdout
    assert any(key.startswith("study/dvc/runs/") for key in objects)  # the run cache

    origin = tmp_path / "origin.git"
    run(["git", "init", "-q", "--bare", str(origin)], tmp_path)
    run(["git", "remote", "add", "origin", str(origin)], work)
    run(["git", "push", "-q", "origin", "HEAD:main"], work)

    # A newcomer with read-only keys: clone, pull, and the study is there.
    fresh = tmp_path / "fresh"
    run(["git", "clone", "-q", "-b", "main", str(origin), str(fresh)], tmp_path)
    reader = {**_clean_env(pipeline_env), **s3.env(s3.reader)}
    start = time.monotonic()
    run(["dvc", "pull"], fresh, reader)
    pull_s = time.monotonic() - start
    for out in ("data/mnist.npz", "models/vae/vae.pt", "models/ppca/ppca.npz"):
        assert (fresh / out).read_bytes() == (work / out).read_bytes()
    assert "up to date" in run(["dvc", "status", "dvc.yaml"], fresh, reader).stdout
    repro = run(["dvc", "repro"], fresh, reader)
    assert "Running stage" not in repro.stdout and "didn't change, skipping" in repro.stdout, repro.stdout
    print(f"dvc pull of the reduced study: {pull_s:.1f} s")

    # An experiment: run in one clone, pushed (git refs to origin, data to the bucket), pulled
    # and applied in the other.
    exp = run(
        ["dvc", "exp", "run", "-n", "tolerance", "-S", "bayesopt.success_tolerance=0.02", "bayesopt"],
        work,
        env,
    )
    assert "Running stage 'bayesopt'" in exp.stdout
    run(["dvc", "exp", "push", "origin", "tolerance"], work, env)
    assert "tolerance" in run(["dvc", "exp", "list", "origin"], fresh, reader).stdout
    run(["dvc", "exp", "pull", "origin", "tolerance"], fresh, reader)
    run(["dvc", "exp", "apply", "tolerance"], fresh, reader)
    for path in ("metrics/bayesopt.json", "params.yaml", "figures/bayesopt/best_so_far.png"):
        assert (fresh / path).read_bytes() == (work / path).read_bytes()
    assert "up to date" in run(["dvc", "status", "bayesopt"], fresh, reader).stdout

    # Read-only keys cannot change the bucket.
    (fresh / "notes.txt").write_text("a newcomer's notes\n")
    run(["dvc", "add", "-q", "notes.txt"], fresh, reader)
    denied = run(["dvc", "push", "notes.txt"], fresh, reader, check=False)
    assert denied.returncode != 0 and "AccessDenied" in denied.stdout + denied.stderr


def _tiny_repo(path: Path, files: dict[str, bytes], env: dict[str, str]) -> Path:
    path.mkdir()
    run(["git", "init", "-q"], path)
    run(["dvc", "init", "-q"], path, env)
    (path / "blobs").mkdir()
    for name, content in files.items():
        (path / "blobs" / name).write_bytes(content)
    run(["dvc", "add", "-q", "blobs"], path, env)
    run(["git", "add", "-A"], path)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "blobs"], path)
    return path


def _one_clear_line(result) -> str:
    """The command failed without a traceback and ends with one error line (then at most its
    fix and DVC's support footer); return that line."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.strip()]
    last = max(i for i, line in enumerate(lines) if line.startswith(("ERROR:", "pml-ops: error:")))
    assert all(line.startswith(("  Fix:", "Having any troubles?")) for line in lines[last + 1 :]), output
    return lines[last]


@pytest.mark.parametrize("fault", ["wrong keys", "unreachable endpoint", "missing bucket"])
def test_faults_end_with_one_clear_line(fault: str, s3: S3Server, tmp_path: Path, stage_env, monkeypatch):
    env = {**_clean_env(stage_env), **s3.env(), "PML_OPS_REMOTE_URL": f"s3://{BUCKET}/faults"}
    repo = _tiny_repo(tmp_path / "repo", {"a.bin": b"a" * 1000}, env)
    run([*PML_OPS, "remote", "set"], repo, env)  # .dvc/config.local
    expected = {
        "wrong keys": ("refused the credentials", "InvalidAccessKeyId|Forbidden|403"),
        "unreachable endpoint": ("is unreachable", "Could not connect"),
        "missing bucket": ("does not exist", "bucket does not exist"),
    }[fault]
    if fault == "wrong keys":
        env["AWS_SECRET_ACCESS_KEY"] = "not-the-key"
        env["AWS_ACCESS_KEY_ID"] = "AKIANOTAKEY"
    elif fault == "unreachable endpoint":
        run(
            [
                "dvc",
                "remote",
                "modify",
                "--local",
                "shared",
                "endpointurl",
                f"http://127.0.0.1:{free_port()}",
            ],
            repo,
            env,
        )
    else:
        run(["dvc", "remote", "modify", "--local", "shared", "url", "s3://no-such-bucket/x"], repo, env)

    start = time.monotonic()
    check = run([*PML_OPS, "remote", "check"], repo, env, check=False)
    assert time.monotonic() - start < 30  # bounded, not DVC's retries
    assert check.returncode == 2 and expected[0] in _one_clear_line(check), check.stderr
    assert "Fix:" in check.stderr
    for name, value in env.items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    doctor = check_dvc(repo)
    assert doctor.status is Status.FAIL and expected[0] in doctor.detail and doctor.fix

    push = run(["dvc", "push"], repo, env, check=False)
    assert re.search(expected[1], _one_clear_line(push))
    assert_objects_intact(s3.keys("faults/"))


def test_push_interrupted_by_a_dying_server_completes_when_repeated(s3: S3Server, tmp_path: Path, stage_env):
    files = {f"part{i}.bin": os.urandom(300_000) for i in range(12)}
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {**_clean_env(stage_env), **s3.env(endpoint=endpoint), "PML_OPS_REMOTE_URL": f"s3://{BUCKET}/torn"}
    repo = _tiny_repo(tmp_path / "repo", files, env)
    target = int(s3.endpoint.rsplit(":", 1)[1])
    proxy = start_proxy(port, target, tmp_path / "proxy.log", max_bytes=1_500_000)
    try:
        run([*PML_OPS, "remote", "set", "--project"], repo, env)
        run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "remote"], repo)
        torn = run(["dvc", "push", "--jobs", "1"], repo, env, check=False)
    finally:
        stop_group(proxy)
    line = _one_clear_line(torn)
    assert "failed to push data to the cloud" in line and "failed to upload" in line, line
    partial = s3.keys("torn/")
    assert 0 < len(partial) < len(files) + 1, sorted(partial)  # some, not all, arrived
    assert_objects_intact(partial)

    proxy = start_proxy(port, target, tmp_path / "proxy.log")  # the server is back
    try:
        run(["dvc", "push"], repo, env)
        fresh = tmp_path / "fresh"
        run(["git", "clone", "-q", str(repo), str(fresh)], tmp_path)
        run(["dvc", "pull"], fresh, env)  # verify = true: each download is checked by its md5
    finally:
        stop_group(proxy)
    assert_objects_intact(s3.keys("torn/"))
    for name, content in files.items():
        assert md5_of((fresh / "blobs" / name).read_bytes()) == md5_of(content)
    assert "up to date" in run(["dvc", "status"], fresh, env).stdout
