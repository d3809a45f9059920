"""The images and the compose stack, for real, on a Docker engine (marker `docker`).

Where no engine answers, these tests skip and say why; in CI (CI=true) they fail instead: .ci/run
starts an engine of its own (scripts/docker-engine.sh). Where the official base image cannot be
pulled, the images are built on the Debian stand-ins of docker/make-standins.sh.

- the CPU image builds (scripts/docker-build.sh), runs as non-root, holds no build secrets, and
  `pml-ops doctor` passes in it;
- scripts/docker-run.sh runs the smoke pipeline and a tracked stage on a fresh clone: the outputs,
  dvc.lock, the DVC cache and the MLflow store land in the clone, owned by the calling user, with no
  git warnings, and a second run changes nothing;
- the compose stack (docker/compose.yaml): MLflow on PostgreSQL, the pipeline logging to it, two
  Optuna workers sharing one study, everything still there after `down` and `up`.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pml_ops.config.profiles import apply_profile, load_profile
from tests.conftest import REPO_ROOT, VENV_BIN, run

pytestmark = pytest.mark.docker

TEST_IMAGE = "pml-ops:test-cpu"
REDUCED_IMAGE = "pml-ops:test-cpu-reduced"
OFFICIAL_POSTGRES = "postgres:16.10-bookworm"
STANDIN_POSTGRES = "pml-ops/postgres:15-bookworm"
UNPRIVILEGED = 4242  # the "calling user" when the tests run as root (CI here)
TRIALS_PER_WORKER = 2


def docker_env() -> dict[str, str]:
    return dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")


def docker(*args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, env=docker_env(), timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="session")
def engine() -> None:
    """A Docker engine that answers, else a skip (a failure in CI) naming what is missing."""
    reason = None
    if shutil.which("docker") is None:
        reason = "no docker CLI on PATH"
    else:
        info = subprocess.run(["docker", "info"], capture_output=True, text=True)
        if info.returncode != 0:
            host = os.environ.get("DOCKER_HOST", "the default socket")
            reason = f"no Docker engine answers at {host}: {info.stderr.strip().splitlines()[-1:]}"
    if reason:
        message = f"{reason} (start one: sudo scripts/docker-engine.sh start; .ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def cpu_image(engine) -> dict:
    """The CPU image, built as a user builds it; returns `docker image inspect`'s record."""
    started = time.monotonic()
    result = run(
        ["bash", "scripts/docker-build.sh", "cpu"], REPO_ROOT, {**docker_env(), "PML_OPS_IMAGE": TEST_IMAGE}
    )
    print(f"docker-build cpu: {time.monotonic() - started:.0f} s; {result.stdout.strip().splitlines()[-1]}")
    return json.loads(docker("image", "inspect", TEST_IMAGE).stdout)[0]


def test_image_runs_as_non_root_without_build_secrets_and_passes_doctor(cpu_image):
    config = cpu_image["Config"]
    assert config["User"] == "10001:10001"
    assert docker("run", "--rm", TEST_IMAGE, "id", "-u").stdout.strip() == "10001"
    names = [entry.split("=", 1)[0] for entry in config["Env"]]
    assert not [name for name in names if any(s in name for s in ("PASSWORD", "SECRET", "TOKEN", "KEY"))]
    # The build extras (pip settings, certificate, local wheels) and host paths stay out of the
    # image: not in its history, not in its files.
    history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", TEST_IMAGE).stdout
    for leak in ("build-extras", "PIP_CONFIG_FILE", "TORCH_SOURCE", "/opt/wheels", "ca-bundle"):
        assert leak not in history, leak
    files = docker(
        "run",
        "--rm",
        "--user",
        "0",
        TEST_IMAGE,
        "bash",
        "-c",
        "ls /app/docker; find / -xdev -name 'torch-*.whl' -o -name pip.conf -o -name ca-bundle.crt",
    ).stdout
    assert "build-extras" not in files and ".whl" not in files and "pip.conf" not in files
    doctor = docker("run", "--rm", TEST_IMAGE, "pml-ops", "doctor", check=False)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "all essential checks passed" in doctor.stdout


# --- the one command: the pipeline in the image on the user's checkout ---------------------------


@pytest.fixture
def reduced_clone(temp_clone: Path) -> Path:
    """A fresh clone with the smoke profile's settings committed."""
    params_file = temp_clone / "params.yaml"
    params_file.write_text(
        yaml.safe_dump(reduce_params(yaml.safe_load(params_file.read_text())), sort_keys=False)
    )
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "reduced"], temp_clone)
    return temp_clone


def reduce_params(params: dict) -> dict:
    """The smoke profile (profiles/smoke.yaml), the one set of reduced settings."""
    profile = REPO_ROOT / "profiles" / "smoke.yaml"
    return apply_profile(params, load_profile(profile), str(profile))


def owners(root: Path) -> set[int]:
    return {path.lstat().st_uid for path in [root, *root.rglob("*")]}


def git_warnings(output: str) -> list[str]:
    return [line for line in output.splitlines() if "warning" in line.lower() and "git" in line.lower()]


@pytest.mark.timeout(1800)
def test_docker_run_puts_the_pipelines_results_in_the_users_checkout(cpu_image, reduced_clone, mnist_mirror):
    clone = reduced_clone
    env = {**docker_env(), "PML_OPS_IMAGE": TEST_IMAGE, "PML_OPS_MNIST_MIRROR": str(mnist_mirror)}
    env["PML_OPS_PROGRESS"] = "0"
    env.pop("MLFLOW_TRACKING_URI", None)
    uid = os.getuid()
    if uid == 0:  # stand for an ordinary user: their checkout, their UID inside the container
        uid = UNPRIVILEGED
        subprocess.run(["chown", "-R", f"{uid}:{uid}", str(clone)], check=True)
        env["PML_OPS_DOCKER_USER"] = f"{uid}:{uid}"
    command = ["bash", "scripts/docker-run.sh"]
    tracked_stage = ["dvc", "repro", "train@vae"]  # logs a run to MLflow

    started = time.monotonic()
    smoke = run([*command, "smoke", "prepare"], clone, env)  # the smoke entry point, one stage
    stage = run([*command, *tracked_stage], clone, env)
    print(f"docker-run smoke + train@vae: {time.monotonic() - started:.0f} s")
    output = smoke.stdout + smoke.stderr + stage.stdout + stage.stderr
    assert "Running stage 'prepare'" in output and "Running stage 'train@vae'" in output
    assert git_warnings(output) == []

    lock = yaml.safe_load((clone / "dvc.lock").read_text())  # rewritten for the reduced settings
    assert lock["stages"]["train@vae"]["params"]["params.yaml"]["density"]["subset"]["train"] == 300
    assert (clone / "data" / "mnist.npz").is_file() and (clone / "models" / "vae" / "vae.pt").is_file()
    assert any((clone / ".dvc" / "cache").rglob("*")), "the DVC cache is in the checkout"
    assert owners(clone) == {uid}, "files written by the container belong to the calling user"

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{clone / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("pml-ops")
    runs = client.search_runs([experiment.experiment_id])
    assert runs and {r.info.status for r in runs} == {"FINISHED"}
    assert any((clone / "mlartifacts").rglob("*")), "MLflow artifacts are in the checkout"

    again = (
        run([*command, "smoke", "prepare"], clone, env).stdout
        + run([*command, *tracked_stage], clone, env).stdout
    )
    assert "Running stage" not in again and "Data and pipelines are up to date." in again
    assert len(client.search_runs([experiment.experiment_id])) == len(runs)


def test_docker_run_rejects_an_unknown_device(tmp_path):
    result = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "docker-run.sh"), "true"],
        capture_output=True,
        text=True,
        env={**docker_env(), "PML_OPS_DEVICE": "tpu"},
    )
    assert result.returncode == 2 and "PML_OPS_DEVICE must be auto, cpu or gpu, not 'tpu'" in result.stderr


def test_docker_build_rejects_an_unknown_flavour():
    result = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "docker-build.sh"), "rocm"],
        capture_output=True,
        text=True,
        env=docker_env(),
    )
    assert result.returncode == 2 and "flavour must be cpu or cuda, not 'rocm'" in result.stderr


# --- the compose stack ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def compose_command() -> list[str]:
    """Compose v2 when the CLI has it, else Debian's docker-compose 1.29."""
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("neither `docker compose` nor `docker-compose` is installed")


def wait_for(condition, what: str, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(2)
    raise AssertionError(f"{what}: not within {timeout_s} s")


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=3) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def tiny_tuning(params: dict) -> dict:
    params = reduce_params(params)
    params["tuning"]["trial"].update(epochs=1, train_size=256, validation_size=128, max_cost_ratio=8.0)
    return params


@pytest.fixture(scope="module")
def stack(cpu_image, mnist_mirror, tmp_path_factory) -> Iterator[dict]:
    """docker/compose.yaml under a project name of its own, on the test image with tiny settings and
    (where the official image cannot be pulled) the stand-in PostgreSQL; `down -v` at the end."""
    tmp = tmp_path_factory.mktemp("compose")
    params = tiny_tuning(yaml.safe_load((REPO_ROOT / "params.yaml").read_text()))
    (tmp / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (tmp / "Dockerfile").write_text(
        f"FROM {TEST_IMAGE}\nCOPY --chown=10001:10001 params.yaml /app/params.yaml\n"
    )
    docker("build", "-q", "-t", REDUCED_IMAGE, str(tmp))

    postgres_image = OFFICIAL_POSTGRES
    if docker("pull", "-q", OFFICIAL_POSTGRES, check=False).returncode != 0:
        run(["bash", "docker/make-standins.sh", "postgres"], REPO_ROOT, docker_env())
        postgres_image = STANDIN_POSTGRES
    password = secrets.token_hex(12)
    values = {
        "POSTGRES_USER": "pml",
        "POSTGRES_PASSWORD": password,
        "PML_OPS_IMAGE": REDUCED_IMAGE,
        "PML_OPS_POSTGRES_IMAGE": postgres_image,
        "MLFLOW_PORT": str(free_port()),
        "POSTGRES_PORT": str(free_port()),
        "MLFLOW_WORKERS": "1",
        "PML_OPS_PROGRESS": "0",
        "PML_OPS_TUNE_MODEL": "vae",
        "PML_OPS_TUNE_TRIALS": str(TRIALS_PER_WORKER),
    }
    env_file = tmp / "test.env"
    env_file.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    # The offline MNIST for the services that run the prepare stage.
    mirror = {"environment": {"PML_OPS_MNIST_MIRROR": "/mnist"}, "volumes": [f"{mnist_mirror}:/mnist:ro"]}
    override = tmp / "compose.test.yaml"
    override.write_text(yaml.safe_dump({"services": {"pipeline": mirror, "prepare": mirror}}))
    project = f"pmlopstest{secrets.token_hex(4)}"
    base = [
        *compose_command(),
        "--env-file",
        str(env_file),
        "-p",
        project,
        "-f",
        str(REPO_ROOT / "docker" / "compose.yaml"),
        "-f",
        str(override),
    ]

    def compose(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([*base, *args], capture_output=True, text=True, env=docker_env(), timeout=900)
        if check and result.returncode != 0:
            logs = subprocess.run(
                [*base, "logs", "--no-color", "--tail", "50"], capture_output=True, text=True
            )
            raise AssertionError(
                f"compose {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}\n{logs.stdout}"
            )
        return result

    url = f"http://127.0.0.1:{values['MLFLOW_PORT']}"
    optuna_url = f"postgresql+psycopg2://pml:{password}@127.0.0.1:{values['POSTGRES_PORT']}/optuna"
    try:
        yield {"compose": compose, "url": url, "optuna": optuna_url, "project": project}
    finally:
        compose("--profile", "pipeline", "--profile", "tune", "down", "-v", "--remove-orphans", check=False)


def up_mlflow(stack: dict) -> None:
    stack["compose"]("up", "-d", "mlflow")
    wait_for(lambda: healthy(stack["url"]), f"MLflow at {stack['url']} healthy")


def study_trials(storage: str) -> list:
    import optuna

    return optuna.load_study(study_name="vae-pareto", storage=storage).get_trials(deepcopy=False)


@pytest.mark.timeout(1800)
def test_compose_stack_tracks_runs_and_shares_a_study_and_keeps_them(stack):
    from mlflow.tracking import MlflowClient

    compose = stack["compose"]
    started = time.monotonic()
    up_mlflow(stack)
    print(f"compose: MLflow healthy after {time.monotonic() - started:.0f} s")

    compose("run", "--rm", "pipeline", "dvc", "repro", "train@vae")
    client = MlflowClient(tracking_uri=stack["url"])
    experiment = client.get_experiment_by_name("pml-ops")
    runs = client.search_runs([experiment.experiment_id])
    assert runs and {r.info.status for r in runs} == {"FINISHED"}
    assert experiment.artifact_location.startswith("mlflow-artifacts:")  # proxied by the server
    models = client.search_logged_models(experiment_ids=[experiment.experiment_id])
    assert [m.source_run_id for m in models] == [runs[0].info.run_id]
    assert client.list_logged_model_artifacts(models[0].model_id), "model uploaded through the server"

    compose("--profile", "tune", "up", "-d", "--scale", "worker=2", "worker")

    def worker_states() -> list[str]:
        listed = compose("ps", "-a", "-q", "worker").stdout.split()
        return [
            docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", c).stdout.strip() for c in listed
        ]

    wait_for(
        lambda: len(worker_states()) == 2 and "running" not in " ".join(worker_states()),
        "2 workers done",
        900,
    )
    logs = compose("logs", "--no-color", "worker").stdout
    assert worker_states() == ["exited 0", "exited 0"], logs
    assert logs.count("tune: study 'vae-pareto'") == 2, logs
    trials = study_trials(stack["optuna"])
    assert len(trials) == 2 * TRIALS_PER_WORKER
    assert all(trial.state.is_finished() for trial in trials)
    assert any(trial.state.name == "COMPLETE" for trial in trials)
    print(f"compose: mlflow + pipeline + 2 workers in {time.monotonic() - started:.0f} s")

    all_runs = client.search_runs([experiment.experiment_id])
    compose("--profile", "pipeline", "--profile", "tune", "down")
    assert not healthy(stack["url"])
    up_mlflow(stack)
    client = MlflowClient(tracking_uri=stack["url"])
    assert {r.info.run_id for r in client.search_runs([experiment.experiment_id])} == {
        r.info.run_id for r in all_runs
    }
    assert client.list_logged_model_artifacts(models[0].model_id)
    assert [t.number for t in study_trials(stack["optuna"])] == [t.number for t in trials]


# --- the CUDA image (marker docker_cuda: downloads several GB of CUDA wheels) ---------------------


@pytest.mark.docker_cuda
@pytest.mark.timeout(3600)
@pytest.mark.skipif(
    not os.environ.get("PML_OPS_DOCKER_CUDA"),
    reason="the CUDA image build downloads several GB: run it with make test-docker-cuda",
)
def test_cuda_image_builds_and_runs_the_smoke_pipeline_on_the_cpu(engine, reduced_clone, mnist_mirror):
    image = "pml-ops:test-cuda"
    started = time.monotonic()
    run(["bash", "scripts/docker-build.sh", "cuda"], REPO_ROOT, {**docker_env(), "PML_OPS_IMAGE": image})
    size = int(docker("image", "inspect", "-f", "{{.Size}}", image).stdout)
    print(f"docker-build cuda: {time.monotonic() - started:.0f} s, {size / 1e9:.1f} GB")
    probe = "import torch; print(torch.version.cuda, torch.cuda.is_available())"
    cuda, available = docker("run", "--rm", image, "python", "-c", probe).stdout.split()
    print(f"torch.version.cuda in the image: {cuda}; GPU visible: {available}")
    assert cuda != "None"

    env = {**docker_env(), "PML_OPS_IMAGE": image, "PML_OPS_DEVICE": "cpu", "PML_OPS_PROGRESS": "0"}
    env["PML_OPS_MNIST_MIRROR"] = str(mnist_mirror)
    if os.getuid() == 0:
        subprocess.run(["chown", "-R", f"{UNPRIVILEGED}:{UNPRIVILEGED}", str(reduced_clone)], check=True)
        env["PML_OPS_DOCKER_USER"] = f"{UNPRIVILEGED}:{UNPRIVILEGED}"
    smoke = run(["bash", "scripts/docker-run.sh", "smoke"], reduced_clone, env)
    assert "Running stage 'prepare'" in smoke.stdout
    assert (reduced_clone / "dvc.lock").is_file()
