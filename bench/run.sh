#!/usr/bin/env bash
# Runs the bench module's benchmarks (BenchmarkVerify, BenchmarkVerifyParallel
# and BenchmarkOverhead, -benchmem), saves the raw output and benchstat's
# summary, and prints one markdown table (see cmd/table).
#
# Environment:
#   COUNT      runs of each benchmark (default 6)
#   BENCHTIME  -benchtime of each run (default 1s)
#   BENCH      -bench regexp (default ^Benchmark(Verify|Overhead))
#   OUT        directory for the outputs (default results)
#   BASE       an earlier raw output to compare with in benchstat (optional)
#
# Outputs: $OUT/latest.txt (raw go test output), $OUT/latest.benchstat.txt,
# $OUT/latest.md (the table, also printed).
set -euo pipefail
cd "$(dirname "$0")"

count=${COUNT:-6}
benchtime=${BENCHTIME:-1s}
bench=${BENCH:-^Benchmark(Verify|Overhead)}
out=${OUT:-results}
mkdir -p "$out"
raw="$out/latest.txt"

# Other work on the machine skews the numbers (most of all the parallel
# ones): sample the 1-minute load average while the benchmarks run.
(while :; do cut -d' ' -f1 /proc/loadavg 2>/dev/null || true; sleep 10; done) >"$out/latest.load" &
sampler=$!
trap 'kill "$sampler" 2>/dev/null || true' EXIT
echo "running $bench with -count=$count -benchtime=$benchtime (several minutes); raw output: $raw" >&2
go test -run '^$' -bench "$bench" -benchmem -count "$count" -benchtime "$benchtime" -timeout 0 . >"$raw" || {
  echo "go test failed; see $raw" >&2
  tail -20 "$raw" >&2
  exit 1
}

kill "$sampler" 2>/dev/null || true
load_max=$(sort -n "$out/latest.load" | tail -1)

gobin=$(go env GOBIN)
[ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"
export PATH="$gobin:$PATH"
if ! command -v benchstat >/dev/null; then
  echo "installing benchstat" >&2
  GOFLAGS= go install golang.org/x/perf/cmd/benchstat@latest >&2 || echo "benchstat could not be installed; skipping it" >&2
fi
if command -v benchstat >/dev/null; then
  if [ -n "${BASE:-}" ]; then
    benchstat "$BASE" "$raw" >"$out/latest.benchstat.txt"
  else
    benchstat "$raw" >"$out/latest.benchstat.txt"
  fi
  echo "benchstat: $out/latest.benchstat.txt" >&2
fi

{
  echo "Measured $(date -u +%Y-%m-%d) with $(go version | cut -d' ' -f3) on $(sed -n 's/^cpu: //p' "$raw" | head -1) ($(getconf _NPROCESSORS_ONLN) CPUs); highest 1-minute load average during the run: ${load_max:-unknown}."
  echo
  go run ./cmd/table "$raw"
} | tee "$out/latest.md"
