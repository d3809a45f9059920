#!/usr/bin/env bash
# The one command that starts the shared MLflow tracking server: the compose service `mlflow` and
# the tests (tests/test_mlflow_server.py) both run this script.
#
#   MLFLOW_BACKEND_STORE_URI      required, e.g. postgresql+psycopg2://user:password@postgres:5432/mlflow
#   MLFLOW_ARTIFACTS_DESTINATION  required; where the server stores artifacts it proxies
#                                 (a directory on a shared volume, or s3://..., gs://...)
#   MLFLOW_HOST                   interface to bind (default 127.0.0.1; the container uses 0.0.0.0)
#   MLFLOW_PORT                   port (default 5000)
#   MLFLOW_WORKERS                server worker processes (default 2)
#   MLFLOW_ALLOWED_HOSTS          comma-separated Host headers the server answers (DNS-rebinding
#                                 protection; default: MLflow's own, localhost and private IPs).
#                                 Clients that reach the server by a name (`mlflow:5000` inside the
#                                 compose network, a DNS name from other machines) must be listed.
#
# Clients never touch the artifact store directly: runs get `mlflow-artifacts:/` locations and
# upload and download through the server (--serve-artifacts), so other machines need only the URL.
set -euo pipefail

: "${MLFLOW_BACKEND_STORE_URI:?set MLFLOW_BACKEND_STORE_URI (e.g. postgresql+psycopg2://user:pw@host:5432/mlflow)}"
: "${MLFLOW_ARTIFACTS_DESTINATION:?set MLFLOW_ARTIFACTS_DESTINATION (a directory or object-store URI)}"

args=(
  server
  --backend-store-uri "$MLFLOW_BACKEND_STORE_URI"
  --serve-artifacts
  --artifacts-destination "$MLFLOW_ARTIFACTS_DESTINATION"
  --host "${MLFLOW_HOST:-127.0.0.1}"
  --port "${MLFLOW_PORT:-5000}"
  --workers "${MLFLOW_WORKERS:-2}"
)
if [ -n "${MLFLOW_ALLOWED_HOSTS:-}" ]; then
  args+=(--allowed-hosts "$MLFLOW_ALLOWED_HOSTS")
fi
exec mlflow "${args[@]}"
