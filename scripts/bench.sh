#!/usr/bin/env bash
# Runs the pgAgentOS benchmarks (bench/PgAgentOS.Bench): builds what is missing (scripts/setup.sh),
# then starts a private durable PostgreSQL cluster in a temporary directory, measures every figure
# against a baseline taken in the same run, prints a Markdown table, writes the JSON report to
# artifacts/bench/ and regenerates docs/benchmarks.md (for full runs; --quick and --tiny leave it
# alone unless --docs is given). `./aos bench --help` lists the options.
#
# Usage: scripts/bench.sh [--quick | --tiny | --huge] [options]
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if ! scripts/setup.sh --quiet >/dev/null; then
  echo "bench: setup failed (see above)" >&2
  exit 1
fi

# A bench that died (crash, kill -9) leaves its cluster running: stop those whose owner (the pid
# in the directory name, aos-bench-<pid>-...) is gone. Clusters of live benches are left alone.
for root in "${TMPDIR:-/tmp}"/aos-bench-*; do
  [ -d "$root" ] || continue
  owner="$(basename "$root" | cut -d- -f3)"
  if [[ "$owner" =~ ^[0-9]+$ ]] && kill -0 "$owner" 2>/dev/null; then continue; fi
  if [ -f "$root/pgdata/postmaster.pid" ] && [ ! -f "$root/keep" ]; then
    pid="$(head -n 1 "$root/pgdata/postmaster.pid" 2>/dev/null)"
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    rm -rf "$root" 2>/dev/null || true
  elif [ ! -f "$root/pgdata/postmaster.pid" ] && [ ! -f "$root/keep" ]; then
    rm -rf "$root" 2>/dev/null || true
  fi
done

commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -v '^?? ' | grep -v ' docs/benchmarks.md$')" ]; then
  commit="$commit+changes"
fi
exec dotnet "$ROOT/artifacts/bin/PgAgentOS.Bench/release/aos-bench.dll" \
  --default-docs "$ROOT/docs/benchmarks.md" --commit "$commit" "$@"
