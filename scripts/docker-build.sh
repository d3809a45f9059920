#!/usr/bin/env bash
# Build the pml-ops image (docker/Dockerfile) where registries are reachable and where they are not.
#
#   scripts/docker-build.sh            # pml-ops:cpu  (make docker-build)
#   scripts/docker-build.sh cuda       # pml-ops:cuda (make docker-build-cuda)
#   scripts/docker-build.sh cpu --no-cache ...   # further arguments go to `docker build`
#
#   PML_OPS_IMAGE        tag to build (default pml-ops:<flavour>)
#   PML_OPS_BASE_IMAGE   base image (default: the Dockerfile's, the official python image; when it
#                        is neither present nor pullable, the stand-in docker/make-standins.sh
#                        makes from Debian packages)
#   PML_OPS_TORCH_SOURCE where torch comes from: an index URL, "" for PyPI, or a directory of wheels
#                        on this machine. Default: PyTorch's CPU index for cpu, PyPI (the CUDA
#                        build) for cuda; for cpu, a directory in pip's find-links holding the CPU
#                        wheel is used instead when there is one (machines without that index).
#
# pip's certificate bundle and index settings on this machine (`pip config list`, PIP_CERT,
# PIP_INDEX_URL) go into the build through docker/build-extras/, which only the dependency stage
# reads: nothing of them is in the image. file:// indexes are left out (not visible to the build).
set -euo pipefail
cd "$(dirname "$0")/.."

flavour=${1:-cpu}
[ $# -gt 0 ] && shift
case "$flavour" in
  cpu) default_source=https://download.pytorch.org/whl/cpu ;;
  cuda) default_source= ;;
  *) echo "docker-build: flavour must be cpu or cuda, not '$flavour'" >&2; exit 2 ;;
esac
tag=${PML_OPS_IMAGE:-pml-ops:$flavour}
official_base=$(sed -n 's/^ARG BASE_IMAGE=//p' docker/Dockerfile)
torch_version=$(sed -n 's/^torch==\([^+ ]*\).*/\1/p' requirements/runtime.txt) # the locked release

pip_config() { python3 -m pip config get "$1" 2>/dev/null || true; }

# --- base image --------------------------------------------------------------------------------
base=${PML_OPS_BASE_IMAGE:-}
if [ -z "$base" ]; then
  if docker image inspect "$official_base" >/dev/null 2>&1 || docker pull -q "$official_base" >/dev/null 2>&1; then
    base=$official_base
  else
    base=${PML_OPS_STANDIN_BASE:-pml-ops/base:bookworm-py311}
    echo "docker-build: $official_base cannot be pulled; building on the stand-in $base" >&2
    docker/make-standins.sh base >&2
  fi
fi

# --- build extras: pip settings and local wheels for the dependency stage ------------------------
extras=docker/build-extras
cleanup() { find "$extras" -mindepth 1 -maxdepth 1 ! -name README.md ! -name .gitignore -exec rm -rf {} +; }
trap cleanup EXIT
cleanup

source_set=${PML_OPS_TORCH_SOURCE+set}
torch_source=${PML_OPS_TORCH_SOURCE-$default_source}
if [ -z "$source_set" ] && [ "$flavour" = cpu ]; then
  for dir in $(pip_config global.find-links) ${PIP_FIND_LINKS:-}; do
    if compgen -G "$dir/torch-$torch_version+cpu-*.whl" >/dev/null; then
      torch_source=$dir
      break
    fi
  done
fi
if [ -n "$torch_source" ] && [ -d "$torch_source" ]; then
  mkdir -p "$extras/wheels"
  for wheel in "$torch_source"/*.whl; do
    ln "$wheel" "$extras/wheels/" 2>/dev/null || cp "$wheel" "$extras/wheels/"
  done
  echo "docker-build: torch from the wheels in $torch_source" >&2
  torch_source=$extras/wheels
fi

cert=${PIP_CERT:-$(pip_config global.cert)}
index_url=${PIP_INDEX_URL:-$(pip_config global.index-url)}
extra_index_urls=()
for url in ${PIP_EXTRA_INDEX_URL:-$(pip_config global.extra-index-url)}; do
  [[ "$url" == file:* ]] || extra_index_urls+=("$url")
done
if [ -n "$cert" ] || [ -n "$index_url" ] || [ "${#extra_index_urls[@]}" -gt 0 ]; then
  {
    echo "[global]"
    if [ -n "$cert" ]; then
      cp "$cert" "$extras/ca-bundle.crt"
      echo "cert = /app/$extras/ca-bundle.crt"
    fi
    [ -n "$index_url" ] && [[ "$index_url" != file:* ]] && echo "index-url = $index_url"
    [ "${#extra_index_urls[@]}" -gt 0 ] && echo "extra-index-url = ${extra_index_urls[*]}"
  } >"$extras/pip.conf"
  echo "docker-build: pip settings of this machine passed to the build (${cert:+certificate }${index_url:+index })" >&2
fi

# --- build ---------------------------------------------------------------------------------------
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
echo "docker-build: $tag from $base, torch from ${torch_source:-PyPI}" >&2
started=$SECONDS
docker build -f docker/Dockerfile \
  --build-arg "BASE_IMAGE=$base" \
  --build-arg "TORCH_SOURCE=$torch_source" \
  --label "org.opencontainers.image.revision=$revision" \
  --label "org.pml-ops.dependencies=$(cat requirements/runtime.txt scripts/install.sh | sha256sum | cut -c1-16)" \
  -t "$tag" "$@" .
size=$(docker image inspect -f '{{.Size}}' "$tag")
echo "docker-build: $tag built in $((SECONDS - started)) s, $((size / 1000000)) MB"
