#!/usr/bin/env bash
# One install script for every environment: `make`, .ci/run and the Docker images.
#
#   scripts/install.sh            # create .venv if missing, install torch + pml-ops[dev]
#
# Environment knobs:
#   VENV=path           virtual environment to create/use (default: .venv)
#   PML_OPS_EXTRAS=dev  extras to install ("" for a runtime-only install, as in the images)
#   TORCH_VERSION       pinned torch version (default 2.13.0)
#   TORCH_INDEX_URL     extra package index for torch (e.g. https://download.pytorch.org/whl/cpu)
#   PML_OPS_EDITABLE=1  editable install (default 1; the images use 0)
#   PML_OPS_DEPS_ONLY=1 install torch and the dependencies named in pyproject.toml, not the project
#                       (the images' first pass, run when only pyproject.toml is copied in, so the
#                       heavy layer is rebuilt only when the dependencies change)
set -euo pipefail

cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
EXTRAS=${PML_OPS_EXTRAS-dev}
EDITABLE=${PML_OPS_EDITABLE:-1}
DEPS_ONLY=${PML_OPS_DEPS_ONLY:-0}
PYTHON=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
  echo "install: creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
pip=("$VENV/bin/python" -m pip --disable-pip-version-check)

# Skip the work when nothing that decides the environment has changed.
stamp="$VENV/.pml-ops-installed"
want="$(cat pyproject.toml scripts/install.sh | sha256sum | cut -d' ' -f1) torch=$TORCH_VERSION extras=$EXTRAS editable=$EDITABLE deps_only=$DEPS_ONLY"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

torch_args=()
if [ -n "${TORCH_INDEX_URL:-}" ]; then
  torch_args=(--extra-index-url "$TORCH_INDEX_URL")
fi
"${pip[@]}" install -q "torch==$TORCH_VERSION" "${torch_args[@]}"

if [ "$DEPS_ONLY" = "1" ]; then
  # The requirements of the project and of the chosen extras, read from pyproject.toml.
  listed=$("$VENV/bin/python" - "$EXTRAS" <<'PY'
import sys
import tomllib

with open("pyproject.toml", "rb") as file:
    project = tomllib.load(file)["project"]
extras = [name.strip() for name in sys.argv[1].split(",") if name.strip()]
print("\n".join(project["dependencies"]))
for name in extras:
    print("\n".join(project["optional-dependencies"][name]))
PY
  )
  mapfile -t requirements <<<"$listed"
  "${pip[@]}" install -q "${requirements[@]}"
  echo "$want" > "$stamp"
  echo "install: dependencies ready in $VENV (project not installed: PML_OPS_DEPS_ONLY=1)"
  exit 0
fi

spec="."
[ -n "$EXTRAS" ] && spec=".[$EXTRAS]"
if [ "$EDITABLE" = "1" ]; then
  "${pip[@]}" install -q -e "$spec"
else
  "${pip[@]}" install -q "$spec"
fi
echo "$want" > "$stamp"
echo "install: environment ready in $VENV"
