#!/usr/bin/env bash
# The smoke pipeline: the DVC stages CI runs on every push, natively (`make smoke`, the fresh-install
# test) and inside the CPU image (`docker run IMAGE smoke`, the workflow's image job).
#
# This list is the one place that names them. Add a stage here once it has a reduced setting that
# finishes in a minute or two on a CPU (1 epoch, a small subset).
set -euo pipefail
cd "$(dirname "$0")/.."

SMOKE_STAGES=(prepare)

exec dvc repro "$@" "${SMOKE_STAGES[@]}"
