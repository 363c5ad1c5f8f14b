#!/usr/bin/env bash
# Runs every test of pgAgentOS and ends with the line `tests: N passed, N failed`.
# Installs what is missing first (scripts/setup.sh). Each test assembly starts its own throwaway
# PostgreSQL cluster in a temporary directory and stops it at the end.
#
# Usage: scripts/test.sh [extra dotnet test arguments, e.g. --filter FullyQualifiedName~Install]
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if ! scripts/setup.sh >/dev/null; then
  echo "tests: 0 passed, 1 failed"
  exit 1
fi

RESULTS="$ROOT/artifacts/test-results"
rm -rf "$RESULTS" && mkdir -p "$RESULTS"

# Test hosts that died (crash, kill) leave their clusters running: stop those whose owner
# (the pid in the directory name, /tmp/aos-test-<pid>-...) is gone. Clusters of live test
# hosts, for example of another checkout's test run, are left alone.
sweep() {
  for root in /tmp/aos-test-*; do
    [ -d "$root" ] || continue
    owner="$(basename "$root" | cut -d- -f3)"
    if [[ "$owner" =~ ^[0-9]+$ ]] && kill -0 "$owner" 2>/dev/null; then continue; fi
    d="$root/pgdata"
    if [ -f "$d/postmaster.pid" ]; then
      pid="$(head -n 1 "$d/postmaster.pid" 2>/dev/null)"
      [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    fi
    rm -rf "$root" 2>/dev/null || true
  done
}
sweep

export CI="${CI:-}"
dotnet test PgAgentOS.slnx -c Release --no-build --nologo \
  --logger "trx" --logger "console;verbosity=minimal" --results-directory "$RESULTS" \
  --blame-hang-timeout 8m "$@"
status=$?
sweep

passed=0; failed=0; assemblies=0
for f in "$RESULTS"/*.trx; do
  [ -f "$f" ] || continue
  assemblies=$((assemblies + 1))
  line="$(grep -o '<Counters [^>]*>' "$f" | head -n 1)"
  p="$(echo "$line" | sed -n 's/.* passed="\([0-9]*\)".*/\1/p')"
  fl="$(echo "$line" | sed -n 's/.* failed="\([0-9]*\)".*/\1/p')"
  e="$(echo "$line" | sed -n 's/.* error="\([0-9]*\)".*/\1/p')"
  t="$(echo "$line" | sed -n 's/.* timeout="\([0-9]*\)".*/\1/p')"
  a="$(echo "$line" | sed -n 's/.* aborted="\([0-9]*\)".*/\1/p')"
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${fl:-0} + ${e:-0} + ${t:-0} + ${a:-0}))
done
expected="$(ls -d tests/*.Tests 2>/dev/null | wc -l)"
if [ "$assemblies" -lt "$expected" ]; then
  echo "test: only $assemblies of $expected test assemblies reported results (a test host crashed?)" >&2
  failed=$((failed + expected - assemblies))
fi
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  echo "test: dotnet test exited with $status" >&2
  failed=1
fi
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
