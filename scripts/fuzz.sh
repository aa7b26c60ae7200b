#!/usr/bin/env bash
# Runs every fuzz target of every module, one at a time, for FUZZTIME each
# (default 10s; any -fuzztime value, such as 1m or 5000x), and fails if any
# of them finds an input that fails. A failing input is written to the
# target's testdata/fuzz/<FuzzName>/ directory: commit it with the fix, and
# `go test ./<pkg>` replays it from then on. An optional argument is a
# regular expression: only targets whose name matches it run.
#
#   ./scripts/fuzz.sh                    # every target, 10s each
#   FUZZTIME=5m ./scripts/fuzz.sh Jwks   # a longer session on some targets
#
# FUZZMINIMIZETIME (default 2s) bounds the minimization of each new input:
# Go's default of 60s would spend most of a short run minimizing.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime="${FUZZTIME:-10s}"
minimize="${FUZZMINIMIZETIME:-2s}"
only="${1:-}"

# Every "func FuzzXxx(f *testing.F)" in a _test.go file git tracks or would
# (outside git, in any), as "dir name".
files=$(git ls-files --cached --others --exclude-standard '*_test.go' 2>/dev/null ||
  find . -name '*_test.go' -not -path './.git/*' | sed 's|^\./||')
files=$(grep -v '/testdata/' <<<"$files" || true)
targets=$(grep -H -o '^func Fuzz[A-Za-z0-9_]*(f \*testing\.F)' $files /dev/null |
  sed -E 's|^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\(.*|\1 \2|; s|^([^/ ]*_test\.go):func (Fuzz[A-Za-z0-9_]*)\(.*|. \2|' |
  sort -u)

start=$SECONDS
failed=()
flaked=()
ran=0
while read -r dir name; do
  [ -n "$name" ] || continue
  if [ -n "$only" ] && ! [[ "$name" =~ $only ]]; then
    continue
  fi
  # The module holding dir: its nearest ancestor with a go.mod.
  mod="$dir"
  while [ ! -f "$mod/go.mod" ]; do mod=$(dirname "$mod"); done
  pkg="./${dir#"$mod"}"; pkg="${pkg/#.\/\//./}"
  echo "== $dir $name ($fuzztime)"
  t0=$SECONDS
  for attempt in 1 2; do
    log=$(mktemp)
    if (cd "$mod" && go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimize" "$pkg") 2>&1 | tee "$log"; [ "${PIPESTATUS[0]}" -eq 0 ]; then
      echo "   $name: ok in $((SECONDS - t0))s"
      rm -f "$log"
      break
    fi
    # Go's fuzz coordinator can fail a target at the -fuzztime boundary with
    # a bare "context deadline exceeded", no input written (golang/go#75804,
    # fixed in Go 1.27): not a finding. Such a run is tried once more; a real
    # finding always writes its input, and fails at once.
    if grep -q 'context deadline exceeded' "$log" && ! grep -qE 'Failing input written|panic:|_test\.go:[0-9]+:' "$log"; then
      rm -f "$log"
      if [ "$attempt" -eq 1 ]; then
        echo "   $name: the fuzz engine's deadline race (golang/go#75804), no input written: once more"
        continue
      fi
      echo "   $name: the deadline race again, no input written: not a finding"
      flaked+=("$dir $name")
      break
    fi
    rm -f "$log"
    failed+=("$dir $name")
    break
  done
  ran=$((ran + 1))
done <<<"$targets"

echo "== $ran fuzz targets in $((SECONDS - start))s"
if [ ${#flaked[@]} -gt 0 ]; then
  echo "   hit the fuzz engine's deadline race twice (no input written, not a finding): ${flaked[*]}"
fi
if [ "$ran" -eq 0 ]; then
  echo "no fuzz target matched"; exit 1
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "failing fuzz targets:"; printf '   %s\n' "${failed[@]}"
  echo "new failing inputs (reproduce with go test -run '<FuzzName>/<file>' <pkg>):"
  git status --short --untracked-files=all -- '*testdata/fuzz/*' 2>/dev/null || true
  exit 1
fi
