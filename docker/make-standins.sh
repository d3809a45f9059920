#!/usr/bin/env bash
# Local stand-ins for the registry images the project builds on, made from Debian packages alone,
# for machines that reach Debian's archive and PyPI but no image registry (CI here):
#
#   docker/make-standins.sh base       # pml-ops/base:bookworm-py311, for python:3.11 slim
#                                      # (debootstrap of bookworm, whose Python is 3.11; root only)
#   docker/make-standins.sh postgres   # pml-ops/postgres:15-bookworm, for the compose stack's
#                                      # postgres image (Debian's postgresql-15, same interface)
#   docker/make-standins.sh all
#
# An image that exists is kept (--force as second argument rebuilds it), so warm runs cost nothing.
#   PML_OPS_STANDIN_BASE, PML_OPS_STANDIN_POSTGRES   tags (defaults above)
#   DEBIAN_MIRROR                                    archive (default http://deb.debian.org/debian)
set -euo pipefail
cd "$(dirname "$0")"

BASE=${PML_OPS_STANDIN_BASE:-pml-ops/base:bookworm-py311}
POSTGRES=${PML_OPS_STANDIN_POSTGRES:-pml-ops/postgres:15-bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
force=${2:-}

exists() { [ "$force" != "--force" ] && docker image inspect "$1" >/dev/null 2>&1; }

make_base() {
  if exists "$BASE"; then
    echo "make-standins: $BASE exists"
    return
  fi
  [ "$(id -u)" = 0 ] || { echo "make-standins: debootstrap needs root" >&2; exit 1; }
  command -v debootstrap >/dev/null || { echo "make-standins: install Debian's debootstrap" >&2; exit 1; }
  local rootfs started=$SECONDS
  rootfs=$(mktemp -d /var/tmp/pml-ops-rootfs.XXXXXX)
  # shellcheck disable=SC2064 # expand now: the trap must remove this directory
  trap "rm -rf '$rootfs' '$rootfs.log'" EXIT
  debootstrap --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates \
    bookworm "$rootfs" "$MIRROR" >"$rootfs.log" 2>&1 || { tail -20 "$rootfs.log" >&2; exit 1; }
  # No package lists or downloaded .debs in the image; apt stays usable (apt-get update).
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
  tar -C "$rootfs" -c . | docker import --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' \
    --message "pml-ops stand-in base: debootstrap bookworm minbase + python3.11 from $MIRROR" \
    - "$BASE" >/dev/null
  echo "make-standins: $BASE ($(docker run --rm "$BASE" python3 --version)) in $((SECONDS - started)) s"
}

make_postgres() {
  if exists "$POSTGRES"; then
    echo "make-standins: $POSTGRES exists"
    return
  fi
  make_base
  docker build -q --build-arg "BASE_IMAGE=$BASE" -t "$POSTGRES" standin-postgres >/dev/null
  echo "make-standins: $POSTGRES built"
}

case "${1:-}" in
  base) make_base ;;
  postgres) make_postgres ;;
  all) make_base; make_postgres ;;
  *) echo "usage: $0 base|postgres|all [--force]" >&2; exit 2 ;;
esac
