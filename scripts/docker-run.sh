#!/usr/bin/env bash
# Run a pipeline command inside the pml-ops image, on this checkout (make docker-run ARGS="...").
#
#   scripts/docker-run.sh                                   # dvc repro
#   scripts/docker-run.sh dvc exp run -S vae.training.epochs=5
#   scripts/docker-run.sh pml-ops tune --model cvae --trials 10
#   scripts/docker-run.sh smoke                             # scripts/smoke.sh
#
# The checkout is mounted at its own path and the container runs as your UID:GID, so everything the
# command writes (dvc.lock, metrics, figures, models, reports, mlflow.db, mlartifacts, .dvc/cache)
# lands here, owned by you, and DVC sees the checkout's git. The checkout's code is what runs; the
# image provides Python and the dependencies.
#
#   PML_OPS_DEVICE       auto (default): the CUDA image and `--gpus all` when nvidia-smi lists a GPU,
#                        the CPU image otherwise; or cpu, gpu
#   PML_OPS_IMAGE        image to run (default pml-ops:cuda or pml-ops:cpu); built with
#                        scripts/docker-build.sh when missing
#   PML_OPS_DOCKER_USER  UID:GID to run as (default: yours)
#   PML_OPS_DOCKER_ARGS  more `docker run` arguments, e.g. "--network host" to reach an MLflow
#                        server on this machine's 127.0.0.1
# Passed through when set: PML_OPS_*, MLFLOW_*, OPTUNA_*, DVC_*, AWS_* (PML_OPS_MNIST_MIRROR, a
# directory, is mounted read-only).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd -P)

device=${PML_OPS_DEVICE:-auto}
if [ "$device" = auto ]; then
  device=cpu
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
    device=gpu
  fi
fi
case "$device" in
  cpu) flavour=cpu; gpus=() ;;
  gpu) flavour=cuda; gpus=(--gpus all) ;;
  *) echo "docker-run: PML_OPS_DEVICE must be auto, cpu or gpu, not '$device'" >&2; exit 2 ;;
esac
image=${PML_OPS_IMAGE:-pml-ops:$flavour}

if ! docker image inspect "$image" >/dev/null 2>&1; then
  echo "docker-run: $image not found; building it (scripts/docker-build.sh $flavour)" >&2
  PML_OPS_IMAGE=$image "$root/scripts/docker-build.sh" "$flavour" >&2
fi
built_for=$(docker image inspect -f '{{index .Config.Labels "org.pml-ops.dependencies"}}' "$image")
built_from=$(cat "$root/requirements/runtime.txt" "$root/scripts/install.sh" | sha256sum | cut -c1-16)
if [ "$built_for" != "$built_from" ]; then
  echo "docker-run: $image was built from another lock (requirements/runtime.txt) or" \
    "scripts/install.sh than this checkout's; if the dependencies changed, rebuild it: scripts/docker-build.sh $flavour" >&2
fi

mounts=(-v "$root:$root")
# A git worktree keeps its repository elsewhere: mount that too, at its own path.
if common=$(git -C "$root" rev-parse --path-format=absolute --git-common-dir 2>/dev/null); then
  case "$common" in "$root"/*) ;; *) mounts+=(-v "$common:$common") ;; esac
fi
environment=(-e "PML_OPS_PROJECT=$root" -e "PYTHONPATH=$root" -e HOME=/tmp
  -e "USER=${USER:-$(id -un)}" -e "LOGNAME=${LOGNAME:-$(id -un)}")
for name in $(compgen -e); do
  case "$name" in
    PML_OPS_DEVICE | PML_OPS_IMAGE | PML_OPS_DOCKER_* | PML_OPS_PROJECT | PML_OPS_MNIST_MIRROR) ;;
    PML_OPS_* | MLFLOW_* | OPTUNA_* | DVC_* | AWS_*) environment+=(-e "$name") ;;
  esac
done
mirror=${PML_OPS_MNIST_MIRROR:-}
if [ -d "$mirror" ]; then # a directory on this machine: mounted at its absolute path
  mirror=$(cd "$mirror" && pwd -P)
  mounts+=(-v "$mirror:$mirror:ro")
fi
[ -n "$mirror" ] && environment+=(-e "PML_OPS_MNIST_MIRROR=$mirror")
terminal=()
[ -t 0 ] && [ -t 1 ] && terminal=(-it)
# shellcheck disable=SC2206 # PML_OPS_DOCKER_ARGS is a list of words
extra=(${PML_OPS_DOCKER_ARGS:-})

exec docker run --rm --init "${terminal[@]}" "${gpus[@]}" \
  --user "${PML_OPS_DOCKER_USER:-$(id -u):$(id -g)}" \
  "${mounts[@]}" "${environment[@]}" "${extra[@]}" \
  "$image" "$@"
