#!/usr/bin/env bash
# Static checks of the container files: the Dockerfiles (hadolint), the GitHub workflow
# (actionlint, which runs shellcheck on its `run:` scripts), the compose file and the Dependabot
# configuration (their JSON schemas, shipped with check-jsonschema) and the shell scripts (shellcheck).
# The tools come from the dev extra (pyproject.toml); `make lint` puts the venv first on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

hadolint docker/Dockerfile docker/standin-postgres/Dockerfile
actionlint
check-jsonschema --builtin-schema vendor.compose-spec docker/compose.yaml
check-jsonschema --builtin-schema vendor.dependabot .github/dependabot.yml
shellcheck .ci/run .githooks/commit-msg scripts/*.sh docker/*.sh docker/standin-postgres/*.sh
echo "lint-containers: ok"
