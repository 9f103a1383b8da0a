#!/usr/bin/env bash
# Compares two commits of the SDK on this machine in one run: builds the
# benchmark binary of each (in temporary worktrees), runs them in
# alternating rounds ($COUNT, default 6; the order flips every round, so
# that a change of load falls on both), and prints benchstat's
# comparison, before as the base.
# Usage: ./beforeafter.sh <before-commit> [<after-commit> (default HEAD)] [out-dir]
# Environment: COUNT, BENCH (default the comparison benchmarks).
set -euo pipefail
cd "$(dirname "$0")"
before=$1 after=${2:-HEAD} out=${3:-results}
count=${COUNT:-6}
bench=${BENCH:-'^Benchmark(Upsert|SendMessage|SessionStart|ListPage|InMemory)$'}
mkdir -p "$out"
abs=$(cd "$out" && pwd)
benchstat=$(command -v benchstat || echo "$(go env GOPATH)/bin/benchstat")
[ -x "$benchstat" ] || go install golang.org/x/perf/cmd/benchstat@latest
tmp=$(mktemp -d)
trap 'git worktree remove --force "$tmp/before" 2>/dev/null || true; git worktree remove --force "$tmp/after" 2>/dev/null || true; rm -rf "$tmp"' EXIT
for side in before after; do
	rev=${!side}
	git worktree add -q --detach "$tmp/$side" "$rev"
	(cd "$tmp/$side/bench" && go test -c -o "$abs/$side.test" .)
	echo "$side: $(git rev-parse --short "$rev")" | tee -a "$abs/beforeafter-env.txt"
done
: >"$abs/before.txt"
: >"$abs/after.txt"
echo "load before: $(uptime)" | tee -a "$abs/beforeafter-env.txt"
for i in $(seq "$count"); do
	order="before after"
	[ $((i % 2)) = 0 ] && order="after before"
	for side in $order; do
		echo "-- round $i/$count: $side"
		"$abs/$side.test" -test.run '^$' -test.bench "$bench" -test.count 1 -test.benchmem | tee -a "$abs/$side.txt"
	done
done
echo "load after: $(uptime)" | tee -a "$abs/beforeafter-env.txt"
"$benchstat" "$abs/before.txt" "$abs/after.txt" | tee "$abs/beforeafter-benchstat.txt"
