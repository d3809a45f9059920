#!/usr/bin/env bash
# One install script for every environment: `make`, .ci/run, the GitHub workflow and the Docker images.
# It installs the lock (requirements/*.txt, made by scripts/lock.sh: `make lock`) with every file's
# hash checked, then the project itself without dependencies, so every environment holds the same
# versions (README: Dependencies).
#
#   scripts/install.sh            # create .venv if missing, install requirements/dev.txt + pml-ops[dev]
#
# Environment knobs:
#   VENV=path           virtual environment to create/use (default: .venv)
#   PML_OPS_EXTRAS=dev  extras to install: "dev" installs requirements/dev.txt, "" (a runtime-only
#                       install, as in the images) requirements/runtime.txt. Another extra (bench)
#                       is not locked: its packages are installed after the lock, from the index
#   TORCH_INDEX_URL     extra package index for the locked torch CPU wheel where no local wheel
#                       directory holds it (e.g. https://download.pytorch.org/whl/cpu)
#   PML_OPS_TORCH=lock  torch from the lock (default: the CPU build, hash-checked). "pypi": PyPI's
#                       build of the same release with its CUDA libraries, not hash-checked (the
#                       CUDA image). A venv that already holds the locked release in another build
#                       keeps it.
#   PML_OPS_EDITABLE=1  editable install (default 1; the images use 0)
#   PML_OPS_DEPS_ONLY=1 install the lock, not the project (the images' first pass, run when only the
#                       lock is copied in, so the heavy layer is rebuilt only when the lock changes)
#   TORCH_VERSION       replaced by the lock: torch's release is set in requirements/constraints.txt
#                       (then `make lock`); set, it must name the locked release
set -euo pipefail

cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
EXTRAS=${PML_OPS_EXTRAS-dev}
EDITABLE=${PML_OPS_EDITABLE:-1}
DEPS_ONLY=${PML_OPS_DEPS_ONLY:-0}
TORCH=${PML_OPS_TORCH:-lock}
PYTHON=${PYTHON:-python3}

lock=requirements/runtime.txt
unlocked=()
for extra in ${EXTRAS//,/ }; do
  case "$extra" in
    dev) lock=requirements/dev.txt ;;
    *) unlocked+=("$extra") ;;
  esac
done
[ -f "$lock" ] || { echo "install: $lock is missing (make lock writes it)" >&2; exit 1; }
case "$TORCH" in
  lock | pypi) ;;
  *) echo "install: PML_OPS_TORCH must be lock or pypi, not '$TORCH'" >&2; exit 2 ;;
esac
locked_torch=$(sed -n 's/^torch==\([^ ]*\).*/\1/p' "$lock") # e.g. 2.13.0+cpu
if [ -n "${TORCH_VERSION:-}" ] && [ "$TORCH_VERSION" != "${locked_torch%+*}" ]; then
  echo "install: TORCH_VERSION=$TORCH_VERSION, but the lock pins torch $locked_torch;" \
    "set the release in requirements/constraints.txt and run \`make lock\`" >&2
  exit 2
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "install: creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
pip=("$VENV/bin/python" -m pip --disable-pip-version-check)

# Skip the work when nothing that decides the environment has changed: the lock, this script, and
# for the project install pyproject.toml.
stamp="$VENV/.pml-ops-installed"
decides=("$lock" scripts/install.sh)
[ "$DEPS_ONLY" = "1" ] || decides+=(pyproject.toml)
want="$(cat "${decides[@]}" | sha256sum | cut -d' ' -f1) lock=$lock extras=$EXTRAS torch=$TORCH"
want+=" editable=$EDITABLE deps_only=$DEPS_ONLY"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

# torch: the lock's CPU build, unless PyPI's build of the same release is asked for or installed.
installed_torch=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("torch"))' \
  2>/dev/null || true)
if [ "$TORCH" = lock ] && [ -n "$installed_torch" ] && [ "$installed_torch" != "$locked_torch" ] &&
  [ "${installed_torch%+*}" = "${locked_torch%+*}" ]; then
  echo "install: keeping torch $installed_torch (the locked release in another build)"
  TORCH=pypi
fi
requirements=$lock
if [ "$TORCH" = pypi ]; then
  requirements=$(mktemp)
  trap 'rm -f "$requirements"' EXIT
  awk '/^torch==/ { skip = 1 } skip { if (!/\\$/) skip = 0; next } { print }' "$lock" >"$requirements"
fi

index_args=()
if [ -n "${TORCH_INDEX_URL:-}" ]; then
  index_args=(--extra-index-url "$TORCH_INDEX_URL")
fi
"${pip[@]}" install -q --require-hashes --no-deps "${index_args[@]}" -r "$requirements"
if [ "$TORCH" = pypi ] && [ "${installed_torch%+*}" != "${locked_torch%+*}" ]; then
  echo "install: torch ${locked_torch%+*} from PyPI (its CUDA build, not hash-checked)"
  "${pip[@]}" install -q "torch==${locked_torch%+*}"
fi

if [ "${#unlocked[@]}" -gt 0 ]; then
  # Extras the lock does not cover, read from pyproject.toml (absent in the images' first pass).
  listed=$("$VENV/bin/python" - "${unlocked[@]}" <<'PY'
import sys
import tomllib

with open("pyproject.toml", "rb") as file:
    extras = tomllib.load(file)["project"]["optional-dependencies"]
print("\n".join(name for extra in sys.argv[1:] for name in extras[extra]))
PY
  )
  mapfile -t requirements_unlocked <<<"$listed"
  echo "install: extra(s) ${unlocked[*]} not in the lock: ${requirements_unlocked[*]} from the index," \
    "not hash-checked"
  "${pip[@]}" install -q "${requirements_unlocked[@]}"
fi

if [ "$DEPS_ONLY" = "1" ]; then
  echo "$want" > "$stamp"
  echo "install: dependencies ready in $VENV from $lock (project not installed: PML_OPS_DEPS_ONLY=1)"
  exit 0
fi

# The project alone: its dependencies are the lock's, its build backend the venv's (locked) setuptools.
project=(.)
[ "$EDITABLE" = "1" ] && project=(-e .)
"${pip[@]}" install -q --no-deps --no-build-isolation "${project[@]}"
if ! "${pip[@]}" check >/dev/null; then
  "${pip[@]}" check >&2 || true
  echo "install: the installed packages do not satisfy pyproject.toml: was a dependency added or" \
    "changed without \`make lock\`?" >&2
  exit 1
fi
echo "$want" > "$stamp"
echo "install: environment ready in $VENV from $lock"
