"""The shared MLflow server as a team runs it (docker/mlflow-server.sh through the image's entry
point): artifacts in the team's S3 bucket (proxied, clients hold no S3 keys), a PostgreSQL backend
store, and MLflow's basic-auth app. A run with a figure and a registered model logged by one
process is read back by another that never saw its files; strangers get 401, a read-only user
reads but cannot delete; a real pipeline stage logs in from the environment; and no credential
shows up in logs, run params or tags, artifacts or `dvc metrics show`."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pml_ops.cli.doctor import Status, check_artifacts
from pml_ops.tracking.store import PROXIED_ARTIFACTS
from tests.conftest import REPO_ROOT, copy_clone, run
from tests.e2e.test_mlflow_server import postgres_database, wait_until_healthy  # noqa: F401 (fixture)
from tests.helpers.s3_helpers import BUCKET, S3Server, free_port, stop_group

pytestmark = pytest.mark.e2e
ENTRYPOINT = REPO_ROOT / "docker" / "entrypoint.sh"
PASSWORDS = {"admin": "adm-7f3c9e1b2d", "alice": "alice-4e8a0c6f1b", "reader": "reader-9b2d7e5a3c"}
DB_PASSWORD = "db-5c1e8f2a7d"

WRITER = """
import json
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mlflow, mlflow.sklearn
import numpy as np
from sklearn.decomposition import PCA

x = np.random.default_rng(0).normal(size=(50, 4))
model = PCA(2).fit(x)
figure, axes = plt.subplots()
axes.scatter(*model.transform(x).T)
figure.savefig("latent.png")
mlflow.set_experiment("shared-study")
with mlflow.start_run(run_name="shared") as run:
    mlflow.log_param("n_components", 2)
    mlflow.log_artifact("latent.png", "figures")
    mlflow.sklearn.log_model(model, name="model", registered_model_name="shared-pca",
                             pip_requirements=["scikit-learn"])
print(json.dumps({"run_id": run.info.run_id, "projection": model.transform(x[:3]).tolist()}))
"""

READER = """
import hashlib, json, sys
import mlflow, mlflow.sklearn
import numpy as np
from mlflow import MlflowClient

client = MlflowClient()
run = client.get_run(sys.argv[1])
figure = client.download_artifacts(run.info.run_id, "figures/latent.png", ".")
model = mlflow.sklearn.load_model("models:/shared-pca/1")
x = np.random.default_rng(0).normal(size=(50, 4))
print(json.dumps({
    "params": run.data.params,
    "figure_md5": hashlib.md5(open(figure, "rb").read()).hexdigest(),
    "projection": model.transform(x[:3]).tolist(),
}))
"""


def _backend_url(database: str) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(database).set(drivername="postgresql+psycopg2")
    if not url.password:  # the local server trusts local connections: any password will do
        url = url.set(password=DB_PASSWORD)
    return url.render_as_string(hide_password=False)


def _server_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def test_auth_without_an_admin_password_refuses_to_start(tmp_path: Path):
    env = _server_env(
        MLFLOW_BACKEND_STORE_URI=f"sqlite:///{tmp_path}/m.db",
        MLFLOW_ARTIFACTS_DESTINATION=str(tmp_path / "a"),
        PML_OPS_MLFLOW_AUTH="basic",
        MLFLOW_AUTH_DATABASE_URI=f"sqlite:///{tmp_path}/auth.db",
    )
    result = subprocess.run(
        ["bash", str(ENTRYPOINT), "mlflow-server"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "needs the admin password" in result.stderr and "no default" in result.stderr
    missing = dict(env, MLFLOW_AUTH_ADMIN_PASSWORD_FILE=str(tmp_path / "absent"))
    result = subprocess.run(
        ["bash", str(ENTRYPOINT), "mlflow-server"], env=missing, capture_output=True, text=True
    )
    assert result.returncode == 2 and "is not a readable file" in result.stderr


@pytest.fixture(scope="module")
def server(s3: S3Server, postgres_database: str, tmp_path_factory) -> Iterator[dict]:  # noqa: F811
    tmp = tmp_path_factory.mktemp("mlflow-auth")
    secrets = tmp / "admin-password"
    secrets.write_text(PASSWORDS["admin"] + "\n")
    port = free_port()
    backend = _backend_url(postgres_database)
    env = _server_env(
        **s3.env(),  # only the server holds S3 keys
        MLFLOW_BACKEND_STORE_URI=backend,
        PML_OPS_REMOTE_URL=f"s3://{BUCKET}/shared",  # artifacts: s3://team/shared/mlflow
        PML_OPS_MLFLOW_AUTH="basic",
        MLFLOW_AUTH_ADMIN_PASSWORD_FILE=str(secrets),
        MLFLOW_AUTH_DATABASE_URI=f"sqlite:///{tmp}/auth.db",
        MLFLOW_HOST="127.0.0.1",
        MLFLOW_PORT=str(port),
        MLFLOW_WORKERS="1",
    )
    log = tmp / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            ["bash", str(ENTRYPOINT), "mlflow-server"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process, log)
        for user in ("alice", "reader"):
            _call(url, "POST", "users/create", {"username": user, "password": PASSWORDS[user]}, user="admin")
        yield {
            "url": url,
            "log": log,
            "secrets": [*PASSWORDS.values(), DB_PASSWORD, *s3.writer.env().values()],
        }
    finally:
        stop_group(process)


def _call(
    url: str, method: str, path: str, body: dict | None = None, user: str | None = None
) -> tuple[int, dict]:
    """One REST call to the server, as `user` (None: anonymous); returns (status, JSON body)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{url}/api/2.0/mlflow/{path}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if user is not None:
        token = base64.b64encode(f"{user}:{PASSWORDS[user]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, {}


def _last_json(result) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])  # after MLflow's "View run" lines


def _client_env(url: str, user: str) -> dict[str, str]:
    """A team member's machine: the server's URL and a login, no S3 keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_", "PML_OPS_REMOTE"))}
    env.update(
        MLFLOW_TRACKING_URI=url,
        MLFLOW_TRACKING_USERNAME=user,
        MLFLOW_TRACKING_PASSWORD=PASSWORDS[user],
        PYTHONPATH=str(REPO_ROOT),
        **PROXIED_ARTIFACTS,  # as pml_ops.tracking sets them: artifacts through the server only
    )
    return env


def test_a_run_logged_by_one_process_is_read_by_another_through_the_server(
    server: dict, s3: S3Server, tmp_path: Path
):
    url = server["url"]
    (tmp_path / "writer").mkdir()
    (tmp_path / "reader").mkdir()
    written = _last_json(run([sys.executable, "-c", WRITER], tmp_path / "writer", _client_env(url, "alice")))
    reader = _client_env(url, "reader")
    read = _last_json(run([sys.executable, "-c", READER, written["run_id"]], tmp_path / "reader", reader))
    figure = (tmp_path / "writer" / "latent.png").read_bytes()
    assert read["params"] == {"n_components": "2"}
    assert read["figure_md5"] == hashlib.md5(figure).hexdigest()
    assert read["projection"] == written["projection"]  # the registered model, loaded back

    # The artifacts are in the bucket, not on either machine's disk.
    stored = s3.keys("shared/mlflow/")
    assert [body for key, body in stored.items() if key.endswith("figures/latent.png")] == [figure]
    assert any(key.endswith("/MLmodel") for key in stored)  # the logged model
    assert not any((tmp_path / "writer").glob("mlruns")) and not any(
        (tmp_path / "writer").glob("mlartifacts")
    )

    # Strangers are refused; the read-only user reads but cannot delete.
    run_id = written["run_id"]
    assert _call(url, "GET", f"runs/get?run_id={run_id}")[0] == 401
    assert _call(url, "GET", f"runs/get?run_id={run_id}", user="reader")[0] == 200
    assert _call(url, "POST", "runs/delete", {"run_id": run_id}, user="reader")[0] == 403
    assert (
        _call(url, "GET", f"runs/get?run_id={run_id}", user="admin")[1]["run"]["info"]["lifecycle_stage"]
        == "active"
    )


def test_doctor_checks_the_login_and_the_artifact_store(server: dict, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    anonymous = check_artifacts(server["url"])
    assert anonymous.status is Status.FAIL and "requires a login" in anonymous.detail
    assert "MLFLOW_TRACKING_USERNAME" in anonymous.fix
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORDS["alice"])
    assert check_artifacts(server["url"]).status is Status.OK


def test_pipeline_stage_logs_in_and_no_credential_leaks(server: dict, pipeline_run, tmp_path: Path):
    clone, _, pipeline_env = pipeline_run
    work = copy_clone(clone, tmp_path / "work")
    login = {k: v for k, v in _client_env(server["url"], "alice").items() if k.startswith("MLFLOW_")}
    env = {**pipeline_env, **login}
    stage = run(["dvc", "repro", "--force", "--single-item", "train@ppca"], work, env)

    admin = _client_env(server["url"], "admin")
    status, found = _call(server["url"], "POST", "experiments/search", {"max_results": 100}, user="admin")
    assert status == 200
    ids = [e["experiment_id"] for e in found["experiments"] if e["name"] == "pml-ops"]
    status, runs = _call(server["url"], "POST", "runs/search", {"experiment_ids": ids}, user="admin")
    landed = [r for r in runs["runs"] if {"key": "model", "value": "ppca"} in r["data"].get("tags", [])]
    assert [r["info"]["status"] for r in landed] == ["FINISHED"], runs

    # Nothing secret in what a team member or the server shows.
    metrics = run(["dvc", "metrics", "show"], work, env).stdout
    downloaded = tmp_path / "artifacts"
    # The stage's model is an MLflow LoggedModel (its files live with the model, not the run).
    model_id = json.loads((work / "models" / "ppca" / "mlflow_model.json").read_text())["model_id"]
    fetch = (
        "import sys, mlflow; "
        "mlflow.artifacts.download_artifacts(artifact_uri=f'models:/{sys.argv[1]}', dst_path=sys.argv[2])"
    )
    run([sys.executable, "-c", fetch, model_id, str(downloaded)], tmp_path, admin)
    assert any(downloaded.rglob("*.npz")), "the model's own artifact travels inside the logged model"
    texts = {
        "server log": Path(server["log"]).read_text(),
        "stage output": stage.stdout + stage.stderr,
        "dvc metrics show": metrics,
        "runs, params and tags": json.dumps(runs),
        **{str(p): p.read_bytes().decode("latin-1") for p in downloaded.rglob("*") if p.is_file()},
    }
    for where, text in texts.items():
        for secret in server["secrets"]:
            assert secret not in text, f"a credential appears in {where}"
