#!/usr/bin/env bash
# Entry point of the pml-ops images. The command is run in the project directory: the image's copy
# (/app), or $PML_OPS_PROJECT when set (scripts/docker-run.sh sets it to the bind-mounted checkout).
#
#   (none)              dvc repro            the whole pipeline
#   smoke [ARGS]        scripts/smoke.sh     the CI smoke pipeline
#   mlflow-server       docker/mlflow-server.sh  the shared tracking server (compose)
#   anything else       run as given: `dvc repro vae`, `pml-ops validate`, `bash`, ...
set -euo pipefail
cd "${PML_OPS_PROJECT:-$(dirname "$0")/..}"

case "${1:-}" in
  "") set -- dvc repro ;;
  smoke) shift; set -- scripts/smoke.sh "$@" ;;
  mlflow-server) shift; set -- docker/mlflow-server.sh "$@" ;;
esac
exec "$@"
