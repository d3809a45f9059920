#!/usr/bin/env bash
# A Docker engine of the project's own, for machines without one (CI here: .ci/run). Root only.
#
#   scripts/docker-engine.sh start   # install Debian's docker.io, debootstrap, docker-compose if
#                                     # missing; start dockerd on its own socket and data root
#   scripts/docker-engine.sh stop    # stop the dockerd this script started (its PID file)
#   scripts/docker-engine.sh host    # print the DOCKER_HOST value to export
#
#   PML_OPS_DOCKER_ROOT   data root (default /var/lib/docker-pml: images and the build cache stay
#                         there between runs, so warm builds are cached)
#   PML_OPS_DOCKER_SOCK   socket (default /run/docker-pml.sock)
#
# `start` prints "started" when it started the daemon and "running" when one already answered, so
# a caller stops only the daemon it started.
set -euo pipefail

ROOT=${PML_OPS_DOCKER_ROOT:-/var/lib/docker-pml}
SOCK=${PML_OPS_DOCKER_SOCK:-/run/docker-pml.sock}
PIDFILE=${SOCK%.sock}.pid
HOST="unix://$SOCK"

answers() { DOCKER_HOST=$HOST docker info >/dev/null 2>&1; }

install_packages() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || missing+=(docker-compose)
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "docker-engine: installing ${missing[*]}" >&2
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
  fi
}

case "${1:-}" in
  start)
    if answers; then
      echo running
      exit 0
    fi
    [ "$(id -u)" = 0 ] || { echo "docker-engine: starting dockerd needs root" >&2; exit 1; }
    install_packages
    mkdir -p "$ROOT"
    log="$ROOT.log"
    echo "docker-engine: starting dockerd (data root $ROOT, socket $SOCK, log $log)" >&2
    nohup dockerd --data-root "$ROOT" --host "$HOST" --pidfile "$PIDFILE" >"$log" 2>&1 &
    for _ in $(seq 60); do
      answers && { echo started; exit 0; }
      sleep 1
    done
    echo "docker-engine: dockerd did not answer within 60 s; its log ($log):" >&2
    tail -20 "$log" >&2
    exit 1
    ;;
  stop)
    [ -f "$PIDFILE" ] || exit 0
    pid=$(cat "$PIDFILE")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 30); do
      kill -0 "$pid" 2>/dev/null || exit 0
      sleep 1
    done
    echo "docker-engine: dockerd ($pid) still running after 30 s" >&2
    exit 1
    ;;
  host)
    echo "$HOST"
    ;;
  *)
    echo "usage: $0 start|stop|host" >&2
    exit 2
    ;;
esac
