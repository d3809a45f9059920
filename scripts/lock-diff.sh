#!/usr/bin/env bash
# The locked versions (requirements/*.txt) that differ from a base commit's: the GitHub workflow
# prints them for every push and pull request, next to the full test run on the new lock.
#
#   scripts/lock-diff.sh [BASE]   # default: origin/main when it exists, else HEAD
set -euo pipefail
cd "$(dirname "$0")/.."

base=${1:-}
if [ -z "$base" ]; then
  base=HEAD
  git rev-parse -q --verify origin/main >/dev/null && base=origin/main
fi
if [[ "$base" =~ ^0+$ ]] || ! git rev-parse -q --verify "$base^{commit}" >/dev/null; then
  echo "lock-diff: no base commit '$base' to compare the lock with (a new branch, or a shallow clone)"
  exit 0
fi

pins() { sed -n 's/^\([A-Za-z0-9][A-Za-z0-9._-]*\)==\([^ ;\\]*\).*/\1 \2/p' | sort; }
for lock in requirements/runtime.txt requirements/dev.txt; do
  old=$(git show "$base:$lock" 2>/dev/null | pins || true)
  changes=$(join -a 1 -a 2 -e - -o 0,1.2,2.2 <(echo "$old") <(pins <"$lock") |
    awk 'NF == 3 && $2 != $3 { print "  " $1 ": " $2 " -> " $3 }')
  if [ -z "$changes" ]; then
    echo "$lock: no version changed against $base"
  else
    echo "$lock: $(echo "$changes" | wc -l) version(s) changed against $base (- none, + new):"
    echo "$changes"
  fi
done
