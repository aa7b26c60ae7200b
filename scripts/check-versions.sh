#!/usr/bin/env bash
# Checks that every child module requires the core (and any sibling module
# of this repository) at the version the next release carries, written in
# scripts/VERSION, and keeps a replace to the local copy for development.
# Consumers ignore replace directives, so a child requiring v0.0.0, or a
# version other than the one being released, cannot be installed.
set -euo pipefail
cd "$(dirname "$0")/.."

want=$(tr -d '[:space:]' < scripts/VERSION)
status=0
for gomod in $(find . -name go.mod -not -path './.git/*' -not -path '*/testdata/*' -not -path './go.mod' -not -path '*/node_modules/*' | sort); do
  dir=$(dirname "$gomod")
  # Every require of a module of this repository, in a require block or on one line.
  while read -r mod ver; do
    [ -n "$mod" ] || continue
    if [ "$ver" != "$want" ]; then
      echo "$gomod: requires $mod $ver, want $want (scripts/VERSION)"
      status=1
    fi
    if ! grep -qE "^[[:space:]]*(replace[[:space:]]+)?$mod[[:space:]]+=>" "$gomod"; then
      echo "$gomod: requires $mod but has no replace to the local copy"
      status=1
    fi
  done < <(sed -E 's/^require[[:space:]]+//' "$gomod" | awk '$1 ~ /^github\.com\/tokenguard\/tokenguard(\/|$)/ && $2 ~ /^v/ {print $1, $2}')
done
if [ $status -eq 0 ]; then
  echo "every child module requires the repository's modules at $want"
fi
exit $status
