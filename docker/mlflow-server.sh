#!/usr/bin/env bash
# The one command that starts the shared MLflow tracking server: the compose service `mlflow` and
# the tests (tests/e2e/test_mlflow_server.py, tests/e2e/test_sharing_mlflow.py) all run this script.
#
#   MLFLOW_BACKEND_STORE_URI      required, e.g. postgresql+psycopg2://user:password@postgres:5432/mlflow
#   MLFLOW_ARTIFACTS_DESTINATION  where the server stores the artifacts it proxies: a directory on a
#                                 shared volume, or s3://...
#   PML_OPS_REMOTE_URL            the team's bucket (README: Sharing results): when set, artifacts
#                                 go to $PML_OPS_REMOTE_URL/mlflow instead
#   AWS_ENDPOINT_URL              S3 endpoint of a non-AWS server (MinIO, ...); with AWS_ACCESS_KEY_ID
#                                 and AWS_SECRET_ACCESS_KEY only the server needs S3 credentials
#   MLFLOW_HOST                   interface to bind (default 127.0.0.1; the container uses 0.0.0.0)
#   MLFLOW_PORT                   port (default 5000)
#   MLFLOW_WORKERS                server worker processes (default 2)
#   MLFLOW_ALLOWED_HOSTS          comma-separated Host headers the server answers (DNS-rebinding
#                                 protection; default: MLflow's own, localhost and private IPs).
#                                 Clients that reach the server by a name (`mlflow:5000` inside the
#                                 compose network, a DNS name from other machines) must be listed.
#
# Authentication (MLflow's basic-auth app), for a server other machines can reach:
#   PML_OPS_MLFLOW_AUTH=basic     every request needs a user's name and password (clients set
#                                 MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD)
#   MLFLOW_AUTH_ADMIN_PASSWORD or MLFLOW_AUTH_ADMIN_PASSWORD_FILE (a secrets file): required, no
#                                 default; creates the admin user on the first start
#   MLFLOW_AUTH_ADMIN_USERNAME    default admin
#   MLFLOW_AUTH_DATABASE_URI      required: the users and permissions database (not the backend
#                                 store's database), e.g. postgresql+psycopg2://...@postgres/mlflow_auth
#   MLFLOW_AUTH_DEFAULT_PERMISSION  what every user may do on what others made (default READ)
#   MLFLOW_FLASK_SERVER_SECRET_KEY or ..._FILE: CSRF key; random per start when unset
#
# Clients never touch the artifact store directly: runs get `mlflow-artifacts:/` locations and
# upload and download through the server (--serve-artifacts), so other machines need only the URL.
set -euo pipefail

fail() {
  echo "mlflow-server: $*" >&2
  exit 2
}
read_secret() {  # read_secret NAME: $NAME, else the content of the file $NAME_FILE
  local name=$1 file_var="${1}_FILE"
  if [ -n "${!name:-}" ]; then
    printf '%s' "${!name}"
  elif [ -n "${!file_var:-}" ]; then
    [ -r "${!file_var}" ] || fail "$file_var=${!file_var} is not a readable file"
    tr -d '\r\n' <"${!file_var}"
  fi
}

: "${MLFLOW_BACKEND_STORE_URI:?set MLFLOW_BACKEND_STORE_URI (e.g. postgresql+psycopg2://user:pw@host:5432/mlflow)}"
for name in AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY PML_OPS_REMOTE_URL; do
  [ -n "${!name:-}" ] || unset "$name"  # compose passes unset settings as empty strings
done
if [ -n "${PML_OPS_REMOTE_URL:-}" ]; then  # the team's bucket, when set, replaces the default
  MLFLOW_ARTIFACTS_DESTINATION="${PML_OPS_REMOTE_URL%/}/mlflow"
fi
: "${MLFLOW_ARTIFACTS_DESTINATION:?set MLFLOW_ARTIFACTS_DESTINATION (a directory or s3://...) or PML_OPS_REMOTE_URL}"
if [ -n "${AWS_ENDPOINT_URL:-}" ] && [ -z "${MLFLOW_S3_ENDPOINT_URL:-}" ]; then
  export MLFLOW_S3_ENDPOINT_URL="$AWS_ENDPOINT_URL"  # MLflow's own name for the same setting
fi

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

case "${PML_OPS_MLFLOW_AUTH:-none}" in
  none) ;;
  basic)
    MLFLOW_AUTH_ADMIN_PASSWORD=$(read_secret MLFLOW_AUTH_ADMIN_PASSWORD)
    [ -n "$MLFLOW_AUTH_ADMIN_PASSWORD" ] ||
      fail "PML_OPS_MLFLOW_AUTH=basic needs the admin password: set MLFLOW_AUTH_ADMIN_PASSWORD or MLFLOW_AUTH_ADMIN_PASSWORD_FILE (there is no default)"
    : "${MLFLOW_AUTH_DATABASE_URI:?PML_OPS_MLFLOW_AUTH=basic needs MLFLOW_AUTH_DATABASE_URI (the users database)}"
    MLFLOW_FLASK_SERVER_SECRET_KEY=$(read_secret MLFLOW_FLASK_SERVER_SECRET_KEY)
    if [ -z "$MLFLOW_FLASK_SERVER_SECRET_KEY" ]; then
      MLFLOW_FLASK_SERVER_SECRET_KEY=$(python -c 'import secrets; print(secrets.token_hex(32))')
    fi
    export MLFLOW_AUTH_ADMIN_PASSWORD MLFLOW_FLASK_SERVER_SECRET_KEY
    export MLFLOW_AUTH_ADMIN_USERNAME="${MLFLOW_AUTH_ADMIN_USERNAME:-admin}"
    # MLflow reads the rest from an ini file; it holds no password of an MLflow user (those come
    # from the environment above) but may hold the database's, so only this user can read it.
    config_dir=$(mktemp -d)
    chmod 700 "$config_dir"
    export MLFLOW_AUTH_CONFIG_PATH="$config_dir/basic_auth.ini"
    cat >"$MLFLOW_AUTH_CONFIG_PATH" <<EOF
[mlflow]
default_permission = ${MLFLOW_AUTH_DEFAULT_PERMISSION:-READ}
database_uri = ${MLFLOW_AUTH_DATABASE_URI//%/%%}
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
EOF
    chmod 600 "$MLFLOW_AUTH_CONFIG_PATH"
    args+=(--app-name basic-auth)
    ;;
  *) fail "PML_OPS_MLFLOW_AUTH must be none or basic, not '${PML_OPS_MLFLOW_AUTH}'" ;;
esac
exec mlflow "${args[@]}"
