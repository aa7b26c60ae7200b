#!/usr/bin/env bash
# Runs every test of every module in this repository (each go.mod is its own
# module, so `go test ./...` at the root would miss the others), with the race
# detector, after go vet and a gofmt check. Extra arguments go to `go test`.
set -euo pipefail
cd "$(dirname "$0")/.."

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

# Users on the two supported Go releases must be able to build every module.
for gomod in $(find . -name go.mod -not -path './.git/*' -not -path '*/testdata/*'); do
  if ! grep -qE '^go 1\.25(\.0)?$' "$gomod"; then
    echo "$gomod: the go directive must be 1.25 (found: $(grep '^go ' "$gomod"))"; exit 1
  fi
done

status=0
for mod in $(find . -name go.mod -not -path './.git/*' -not -path '*/testdata/*' | xargs -n1 dirname | sort); do
  echo "== $mod"
  (cd "$mod" && go vet ./... && go test -race -count=1 "$@" ./...) || status=1
done
exit $status
