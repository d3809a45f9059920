"""The container files (Dockerfiles, compose file, workflow, shell scripts) pass their linters,
each linter rejects a seeded defect (so none silently checks nothing), and the compose file holds
together the way `docker compose config` would check it, which cannot run here (no Docker engine).
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
DOCKERFILES = [DOCKER / "Dockerfile.cpu", DOCKER / "Dockerfile.cuda"]
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
    scripts = [REPO_ROOT / ".ci" / "run", *sorted((REPO_ROOT / "scripts").glob("*.sh")), *DOCKER.glob("*.sh")]
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
    references = re.sub(r"\$\$?\{?[A-Z_]*PASSWORD\b", "", COMPOSE.read_text())  # names, not values
    assert "PASSWORD" not in references
    ignored = subprocess.run(["git", "check-ignore", "-q", "docker/.env"], cwd=REPO_ROOT)
    assert ignored.returncode == 0, "docker/.env must be git-ignored"
    for name, service in compose()["services"].items():
        if "env_file" in service:
            assert service["env_file"] == [{"path": ".env", "required": True}], name


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
            assert (context / service["build"]["dockerfile"]).is_file(), name
    assert services["mlflow"]["command"] == ["mlflow-server"]  # docker/mlflow-server.sh
    # The server (user 10001) writes artifacts into a directory the CPU image creates and owns, so
    # the named volume mounted there starts with that ownership.
    destination = services["mlflow"]["environment"]["MLFLOW_ARTIFACTS_DESTINATION"]
    assert f"mlflow-artifacts:{destination}" in services["mlflow"]["volumes"]
    dockerfile = (DOCKER / "Dockerfile.cpu").read_text()
    assert f"mkdir -p {destination}" in dockerfile and "chown -R pml:pml /app /mlflow" in dockerfile
    gpu = services["pipeline-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert gpu == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    worker_env = services["worker"]["environment"]
    assert worker_env["OPTUNA_STORAGE"].endswith("@postgres:5432/optuna")
    assert worker_env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert 'exec $$PML_OPS_TUNE_COMMAND --storage "$$OPTUNA_STORAGE"' in services["worker"]["command"][-1]
    assert "container_name" not in services["worker"]  # would forbid --scale worker=N


# --- images, entry point, CI wiring -------------------------------------------------------------


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_images_install_with_the_shared_script_as_a_non_root_user(dockerfile: Path):
    text = dockerfile.read_text()
    base = re.search(r"^FROM (\S+)", text, re.MULTILINE).group(1)
    assert re.search(r":\d+\.\d+\.\d+-", base), f"base image not pinned to a patch release: {base}"
    # The two passes of scripts/install.sh (tests/test_install.py replays them), with the knobs.
    assert text.index("PML_OPS_DEPS_ONLY=1 bash scripts/install.sh") < text.index("COPY --chown=pml:pml . .")
    assert re.search(r"^RUN --mount=type=cache,target=/root/.cache/pip bash scripts/install.sh", text, re.M)
    for knob in ("VENV=/opt/venv", 'PML_OPS_EXTRAS=""', "PML_OPS_EDITABLE=0"):
        assert knob in text, knob
    assert re.findall(r"^USER (.+)$", text, re.MULTILINE) == ["10001:10001"]
    assert 'VOLUME ["/app/data", "/app/.dvc/cache", "/app/tracking"]' in text
    assert 'ENTRYPOINT ["docker/entrypoint.sh"]' in text


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
    image_runs = "\n".join(step.get("run", "") for step in workflow["jobs"]["image"]["steps"])
    assert "pml-ops:cpu smoke" in image_runs  # scripts/smoke.sh through the entry point
