#!/usr/bin/env bash
# The smoke pipeline: every DVC stage at the reduced settings of profiles/smoke.yaml (a couple of
# minutes on 2 CPU cores). CI's image job (`docker run IMAGE smoke`), the containers' smoke runs
# and the fresh-install test call it; the tests' session pipeline applies the same profile.
#
#   scripts/smoke.sh [DVC REPRO ARGS]   apply the profile to params.yaml in this checkout, then
#                                       `dvc repro`: outputs land here. For throwaway checkouts
#                                       (CI, images, containers): params.yaml keeps the smoke values.
#   scripts/smoke.sh --temp [ARGS]      `dvc exp run --temp -S ...` (needs Git): this workspace does
#                                       not change; the run is kept as a DVC experiment
#                                       (`dvc exp show`). `make smoke` uses this.
set -euo pipefail
cd "$(dirname "$0")/.."

PROFILE=profiles/smoke.yaml

if [ "${1:-}" = "--temp" ]; then
  shift
  set_args=()
  while IFS= read -r line; do
    set_args+=(-S "$line")
  done < <(python -m pml_ops.config.profiles set-args "$PROFILE")
  exec dvc exp run --temp "${set_args[@]}" "$@"
fi

python -m pml_ops.config.profiles apply "$PROFILE" params.yaml
exec dvc repro "$@"
