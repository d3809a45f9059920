"""The container files (Dockerfiles, compose file, workflow, shell scripts) pass their linters,
each linter rejects a seeded defect (so none silently checks nothing), and the compose file holds
together. No Docker engine is needed here; tests/containers/test_docker.py builds and runs the images.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT, VENV_BIN

DOCKER = REPO_ROOT / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
DOCKERFILES = [DOCKERFILE, DOCKER / "standin-postgres" / "Dockerfile"]
COMPOSE = DOCKER / "compose.yaml"
WORKFLOW = REPO_ROOT / ".github" / "workflows" / "ci.yml"
ENV_EXAMPLE = DOCKER / ".env.example"


def lint(*command: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    tool = shutil.which(command[0], path=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    assert tool, f"{command[0]} not installed: it comes with the dev extra (scripts/install.sh)"
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run([tool, *command[1:]], cwd=cwd, env=env, capture_output=True, text=True)


def seeded(tmp_path: Path, source: Path, old: str, new: str, name: str | None = None) -> Path:
    text = source.read_text()
    assert old in text, f"{old!r} not in {source}"
    target = tmp_path / (name or source.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text.replace(old, new, 1))
    return target


# --- linters: the committed files pass, a seeded defect fails ----------------------------------


def test_dockerfiles_pass_hadolint(tmp_path: Path):
    result = lint("hadolint", *map(str, DOCKERFILES))
    assert result.returncode == 0, result.stdout + result.stderr
    bad = seeded(tmp_path, DOCKERFILES[0], "USER 10001:10001", "USER pml")
    result = lint("hadolint", str(bad))
    assert result.returncode != 0 and "DL3066" in result.stdout


def test_workflow_passes_actionlint_and_shellcheck_of_its_steps(tmp_path: Path):
    result = lint("actionlint", str(WORKFLOW))
    assert result.returncode == 0, result.stdout + result.stderr
    bad = seeded(
        tmp_path, WORKFLOW, "runs-on: ubuntu-24.04", "runs-on: ubuntu-24.4", ".github/workflows/ci.yml"
    )
    result = lint("actionlint", str(bad), cwd=tmp_path)
    assert result.returncode != 0 and 'label "ubuntu-24.4" is unknown' in result.stdout
    bad = seeded(tmp_path, WORKFLOW, '>> "$GITHUB_ENV"', ">> $GITHUB_ENV", ".github/workflows/ci.yml")
    result = lint("actionlint", str(bad), cwd=tmp_path)
    assert result.returncode != 0 and "SC2086" in result.stdout  # shellcheck ran on the `run:` script


def test_compose_file_matches_the_compose_specification(tmp_path: Path):
    result = lint("check-jsonschema", "--builtin-schema", "vendor.compose-spec", str(COMPOSE))
    assert result.returncode == 0, result.stdout + result.stderr
    bad = seeded(tmp_path, COMPOSE, "    restart: unless-stopped", "    restart-policy: unless-stopped")
    result = lint("check-jsonschema", "--builtin-schema", "vendor.compose-spec", str(bad))
    assert result.returncode != 0 and "'restart-policy' was unexpected" in result.stdout


def test_shell_scripts_pass_shellcheck(tmp_path: Path):
    scripts = [
        REPO_ROOT / ".ci" / "run",
        *sorted((REPO_ROOT / "scripts").glob("*.sh")),
        *DOCKER.glob("*.sh"),
        *DOCKER.glob("standin-*/*.sh"),
    ]
    result = lint("shellcheck", *map(str, scripts))
    assert result.returncode == 0, result.stdout + result.stderr
    bad = seeded(tmp_path, DOCKER / "entrypoint.sh", 'exec "$@"', "exec $@")
    assert lint("shellcheck", str(bad)).returncode != 0


# --- the compose file holds together ------------------------------------------------------------


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def env_example() -> dict[str, str]:
    pairs = (
        line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines() if re.match(r"^[A-Z_]+=", line)
    )
    return dict(pairs)


def test_every_required_variable_is_in_the_example_env_file():
    text = COMPOSE.read_text().replace("$$", "")  # $$ is a literal $ for the container's shell
    variables = set(re.findall(r"\$\{([A-Z_]+)", text))
    required = {name for name in variables if not re.search(rf"\$\{{{name}:-", text)}
    assert required == {"POSTGRES_USER", "POSTGRES_PASSWORD"}
    assert variables <= set(env_example()), variables - set(env_example())


def test_credentials_come_from_an_uncommitted_env_file():
    # Names of secrets (a `${..PASSWORD..}` reference, a `KEY: ` naming one), never their values.
    text = re.sub(r"\$\$?\{?[A-Z_]*PASSWORD\b[^}\s\"]*\}?", "", COMPOSE.read_text())
    assert "PASSWORD" not in re.sub(r"\b[A-Z_]*PASSWORD: ", "", text)
    ignored = subprocess.run(["git", "check-ignore", "-q", "docker/.env"], cwd=REPO_ROOT)
    assert ignored.returncode == 0, "docker/.env must be git-ignored"
    # Values reach the services by interpolation only (docker/.env or --env-file): no env_file,
    # whose long syntax Compose 1.29 rejects and whose short one ties the stack to docker/.env.
    assert all("env_file" not in service for service in compose()["services"].values())


def test_compose_file_is_accepted_by_compose_1_29(tmp_path: Path):
    """Debian's docker-compose 1.29 (what these machines have) validates the file; it needs no
    engine for `config`. Compose v2 runs it in tests/containers/test_docker.py on GitHub."""
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose (Debian's 1.29) not installed; .ci/run installs it")
    command = ["docker-compose", "--env-file", str(ENV_EXAMPLE), "-f", str(COMPOSE)]
    result = subprocess.run([*command, "config", "-q"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    bad = seeded(tmp_path, COMPOSE, "x-app: &app", "name: pml-ops\nx-app: &app")
    (tmp_path / "postgres-init").mkdir()
    result = subprocess.run(
        ["docker-compose", "--env-file", str(ENV_EXAMPLE), "-f", str(bad), "config", "-q"],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "name" in result.stderr


def test_ports_bind_to_localhost_by_default():
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("${PML_OPS_BIND_ADDRESS:-127.0.0.1}:"), (name, port)
    assert env_example()["PML_OPS_BIND_ADDRESS"] == "127.0.0.1"


def test_services_volumes_dependencies_and_builds_resolve():
    spec = compose()
    services, volumes = spec["services"], set(spec["volumes"])
    for name, service in services.items():
        for mount in service.get("volumes", []):
            source = mount.split(":", 1)[0]
            if source.startswith("."):
                assert (DOCKER / source).is_dir(), (name, source)
            else:
                assert source in volumes, (name, source)
        for dependency in service.get("depends_on", {}):
            assert dependency in services, (name, dependency)
        if "build" in service:
            context = DOCKER / service["build"]["context"]
            assert (context / service["build"]["dockerfile"]).resolve() == DOCKERFILE, name
        assert service["image"].startswith("${PML_OPS_"), (name, "image names are variables")
    assert services["mlflow"]["command"] == ["mlflow-server"]  # docker/mlflow-server.sh
    # The server (user 10001) writes artifacts into a directory the CPU image creates and owns, so
    # the named volume mounted there starts with that ownership.
    destination = services["mlflow"]["environment"]["MLFLOW_ARTIFACTS_DESTINATION"]
    assert f"mlflow-artifacts:{destination}" in services["mlflow"]["volumes"]
    dockerfile = DOCKERFILE.read_text()
    assert f"mkdir -p {destination}" in dockerfile and "chown -R pml:pml /app /mlflow" in dockerfile
    gpu = services["pipeline-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert gpu == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    worker = services["worker"]
    assert worker["environment"]["OPTUNA_STORAGE"].endswith("@postgres:5432/optuna")
    assert worker["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    command = worker["command"]
    assert command[:2] == ["pml-ops", "tune"] and command[-1] == worker["environment"]["OPTUNA_STORAGE"]
    assert command[command.index("--workers") + 1] == "1"  # one process per replica: scale replicas
    assert worker["depends_on"]["prepare"] == {"condition": "service_completed_successfully"}
    assert "container_name" not in worker  # would forbid --scale worker=N


# --- images, entry point, CI wiring -------------------------------------------------------------


def test_image_builds_anywhere_with_the_shared_install_script_as_a_non_root_user():
    text = DOCKERFILE.read_text()
    base = re.search(r"^ARG BASE_IMAGE=(\S+)", text, re.MULTILINE).group(1)
    assert re.search(r":\d+\.\d+\.\d+-", base), f"base image not pinned to a patch release: {base}"
    assert text.index(f"ARG BASE_IMAGE={base}") < text.index("FROM ${BASE_IMAGE}")
    # No syntax frontend to pull and nothing only BuildKit builds: the classic builder works.
    assert "# syntax=" not in text and "--mount" not in text and "<<" not in text
    # The two passes of scripts/install.sh (tests/e2e/test_install.py replays them), with the knobs;
    # the build extras are read by the dependency stage only.
    assert text.index("PML_OPS_DEPS_ONLY=1 bash scripts/install.sh") < text.index("FROM base AS runtime")
    assert text.count("build-extras/ /app/docker/build-extras/") == 1
    assert text.index("COPY docker/build-extras/") < text.index("FROM base AS source")
    assert "RUN rm -rf /app/docker/build-extras" in text
    for knob in ("VENV=/opt/venv", 'PML_OPS_EXTRAS=""', "PML_OPS_EDITABLE=0"):
        assert knob in text, knob
    assert re.findall(r"^USER (.+)$", text, re.MULTILINE) == ["10001:10001"]
    assert 'ENTRYPOINT ["/app/docker/entrypoint.sh"]' in text
    assert "\nVOLUME" not in text  # anonymous volumes would pile up (the Dockerfile says why)


def test_dockerignore_keeps_secrets_stores_and_environments_out():
    ignored = set((REPO_ROOT / ".dockerignore").read_text().split())
    assert {
        ".git",
        ".venv",
        "docker/.env",
        "**/.env",
        "mlflow.db",
        "mlartifacts",
        "data/*",
        ".dvc/cache",
    } <= ignored


def test_entry_point_runs_any_command_from_the_project_directory(tmp_path: Path):
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    entrypoint = str(DOCKER / "entrypoint.sh")
    result = subprocess.run([entrypoint, "pwd"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.stdout.strip() == str(REPO_ROOT)
    result = subprocess.run(
        [entrypoint, "pml-ops", "--help"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0 and "validate" in result.stdout
    result = subprocess.run([entrypoint, "mlflow-server"], env=env, capture_output=True, text=True)
    assert result.returncode != 0 and "set MLFLOW_BACKEND_STORE_URI" in result.stderr


def test_github_workflow_mirrors_ci_run():
    ci_run = (REPO_ROOT / ".ci" / "run").read_text()
    assert "make lint\nmake test" in ci_run
    assert re.search(r"^lint: lint-python lint-containers$", (REPO_ROOT / "Makefile").read_text(), re.M)
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert set(workflow[True]) == {"push", "pull_request"}  # YAML 1.1 reads the key `on` as True
    test_steps = [step.get("run") for step in workflow["jobs"]["test"]["steps"]]
    assert test_steps[-4:] == ["make install", "make lint-python", "make lint-containers", "make test"]
    setup_python = next(s for s in workflow["jobs"]["test"]["steps"] if "setup-python" in s.get("uses", ""))
    assert setup_python["with"]["cache"] == "pip"
    image_runs = [step.get("run") for step in workflow["jobs"]["image"]["steps"]]
    assert image_runs[-1] == "make test-docker"  # the container tests, as .ci/run runs them
    assert "scripts/docker-engine.sh start" in ci_run
