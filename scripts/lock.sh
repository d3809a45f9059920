#!/usr/bin/env bash
# Regenerate the lock files from pyproject.toml with uv (`make lock`; README: Dependencies):
#
#   requirements/dev.txt      the project's dependencies, the dev extra and requirements/build.in
#   requirements/runtime.txt  the same without the dev extra, held to dev.txt's versions
#
# Every pin carries the sha256 of its files; scripts/install.sh installs them with --require-hashes.
#
#   scripts/lock.sh                          # keep every pin that still satisfies pyproject.toml
#   scripts/lock.sh --upgrade                # newest allowed versions (make lock UPGRADE=1)
#   scripts/lock.sh --upgrade-package NAME   # one package (make lock UPGRADE_PACKAGE=NAME)
#
# The target is fixed wherever this runs: CPython 3.11 on Linux x86_64 (manylinux_2_28), torch's CPU
# build at the release requirements/constraints.txt names. Its wheel comes from a directory in pip's
# find-links that holds it, else from PyTorch's CPU index ($TORCH_INDEX_URL, default
# https://download.pytorch.org/whl/cpu); everything else from PyPI. A lock without the CPU build is
# not written; a pre-release new in the lock is named (the newest release of one package may need
# a pre-release of another). uv is the one the lock pins: the venv's (dev extra), or fetched into a
# temporary directory when the venv lacks it.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
TORCH_INDEX_URL=${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}
PYTHON=${PYTHON:-python3}

pip_config() { "$PYTHON" -m pip config get "$1" 2>/dev/null || true; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# uv: the venv's, else the locked version with its hashes.
uv=$VENV/bin/uv
if [ ! -x "$uv" ]; then
  awk '/^uv==/ { keep = 1 } keep { print; if (!/\\$/) exit }' requirements/dev.txt >"$tmp/uv.txt"
  [ -s "$tmp/uv.txt" ] || echo "uv" >"$tmp/uv.txt"
  hashes=(--require-hashes)
  grep -q -- '--hash=' "$tmp/uv.txt" || hashes=()
  "$PYTHON" -m pip install -q --disable-pip-version-check --no-deps "${hashes[@]}" --target "$tmp/uv" \
    -r "$tmp/uv.txt"
  uv=$tmp/uv/bin/uv
fi

# uv reads neither pip's configuration nor its certificate: pass the certificate bundle on.
cert=${PIP_CERT:-$(pip_config global.cert)}
if [ -n "$cert" ] && [ -z "${SSL_CERT_FILE:-}" ]; then
  export SSL_CERT_FILE=$cert
fi

torch_links="${TORCH_INDEX_URL%/}/torch/"
for dir in ${PIP_FIND_LINKS:-} $(pip_config global.find-links); do
  if compgen -G "$dir/torch-*+cpu-cp311-cp311-manylinux_*_x86_64.whl" >/dev/null; then
    torch_links=$dir
    break
  fi
done
echo "lock: torch's CPU build from $torch_links" >&2

locks=(requirements/dev.txt requirements/runtime.txt)
for lock in "${locks[@]}"; do
  [ -f "$lock" ] && cp "$lock" "$tmp/${lock##*/}"
done
restore() {
  for lock in "${locks[@]}"; do
    [ -f "$tmp/${lock##*/}" ] && cp "$tmp/${lock##*/}" "$lock"
  done
  exit 1
}
pins() { sed -n 's/^\([A-Za-z0-9][A-Za-z0-9._-]*==[^ ;\\]*\).*/\1/p' "$@" | sort -u; }

compile=("$uv" pip compile --quiet --generate-hashes --python-version 3.11
  --python-platform x86_64-manylinux_2_28 --find-links "$torch_links" -c requirements/constraints.txt)
"${compile[@]}" "$@" pyproject.toml requirements/build.in --extra dev -o requirements/dev.txt || restore
"${compile[@]}" "$@" pyproject.toml requirements/build.in -c requirements/dev.txt \
  -o requirements/runtime.txt || restore

# PyPI's torch wheels are the CUDA build: the lock must hold the CPU one and no CUDA libraries.
for lock in "${locks[@]}"; do
  if ! grep -q '^torch==[^ ]*+cpu ' "$lock" || grep -q -E '^(nvidia-|triton==)' "$lock"; then
    echo "lock: $lock does not hold torch's CPU build (is $torch_links reachable?); lock left as it was" >&2
    restore
  fi
done
new_pre=$(comm -13 <(pins "$tmp"/*.txt 2>/dev/null) <(pins "${locks[@]}") |
  grep -E '[0-9](a|b|rc|\.dev)[0-9]+$' || true)
if [ -n "$new_pre" ]; then
  echo "lock: pre-releases new in the lock:" "${new_pre//$'\n'/ }" >&2
fi
echo "lock: requirements/dev.txt ($(grep -c '^[a-z0-9]' requirements/dev.txt) packages) and" \
  "requirements/runtime.txt ($(grep -c '^[a-z0-9]' requirements/runtime.txt) packages) written"
