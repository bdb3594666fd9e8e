#!/usr/bin/env bash
# Runs the whole test suite several times in a row beside a CPU-bound process, as on a loaded
# machine, and stops at the first failing run. Each run's output is kept under the log directory.
#   scripts/soak.sh [runs (10)] [log directory (./soak-logs)]
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
logs=${2:-soak-logs}
mkdir -p "$logs"
# One core kept busy: the suite must pass while it competes for the CPU.
node -e 'for (;;) {}' &
burner=$!
trap 'kill "$burner" 2>/dev/null' EXIT
for run in $(seq 1 "$runs"); do
  started=$(date +%s)
  npm test > "$logs/run-$run.log" 2>&1
  code=$?
  echo "run $run of $runs: exit $code after $(( $(date +%s) - started )) s; $(grep -E '^Tests:' "$logs/run-$run.log" || echo 'no summary')"
  if [ "$code" -ne 0 ]; then
    grep -E '^FAIL|●' "$logs/run-$run.log" | sort -u
    exit "$code"
  fi
done
echo "all $runs runs passed"
