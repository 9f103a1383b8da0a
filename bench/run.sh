#!/usr/bin/env bash
# Runs the comparison benchmarks (go test -run '^$' -bench … -benchmem,
# $COUNT rounds) and prints benchstat tables and the
# SDK/net/http and resty/net/http ratios. Usage: ./run.sh [out-dir]
# Environment: COUNT (default 8), MANY_COUNT (default 2; 0 skips
# BenchmarkUpsertMany, which takes ~12 s a round on a quiet machine),
# OBSERVER_COUNT (default 8; 0 skips BenchmarkObserver).
set -euo pipefail
cd "$(dirname "$0")"
out=${1:-results}
mkdir -p "$out"
count=${COUNT:-8}
many=${MANY_COUNT:-2}
observer=${OBSERVER_COUNT:-8}
benchstat=$(command -v benchstat || echo "$(go env GOPATH)/bin/benchstat")
[ -x "$benchstat" ] || go install golang.org/x/perf/cmd/benchstat@latest

go version | tee "$out/env.txt"
echo "GOMAXPROCS=$(nproc)" | tee -a "$out/env.txt"
echo "load before: $(uptime)" | tee -a "$out/env.txt"

# Compile once, so that compiling does not overlap the runs.
go test -c -o "$out/bench.test" .

# -count N would run each sub-benchmark N times in a row, so a change of
# load on a shared machine would fall on one client; $count rounds of
# -count 1 interleave the clients instead.
echo "== comparison benchmarks ($count rounds)"
: >"$out/bench.txt"
for i in $(seq "$count"); do
	echo "-- round $i/$count"
	"$out/bench.test" -test.run '^$' -test.bench '^Benchmark(Upsert|SendMessage|SessionStart|ListPage|InMemory)$' \
		-test.count 1 -test.benchmem | tee -a "$out/bench.txt"
done

if [ "$many" != 0 ]; then
	echo "== BenchmarkUpsertMany (-count $many)"
	"$out/bench.test" -test.run '^$' -test.bench '^BenchmarkUpsertMany$' \
		-test.count "$many" -test.benchmem | tee "$out/many.txt"
fi

if [ "$observer" != 0 ]; then
	echo "== BenchmarkObserver ($observer rounds): the SDK without an Observer, with a no-op one, and net/http"
	: >"$out/observer.txt"
	for i in $(seq "$observer"); do
		"$out/bench.test" -test.run '^$' -test.bench '^BenchmarkObserver$' \
			-test.count 1 -test.benchmem | tee -a "$out/observer.txt"
	done
	"$benchstat" -col '/client@(sdk sdk-observer nethttp)' "$out/observer.txt" | tee "$out/observer-benchstat.txt"
fi

echo "== heap of a 100,000-message list"
"$out/bench.test" -test.run '^TestListHeapFlat$' -test.v | tee "$out/heap.txt"

echo "load after: $(uptime)" | tee -a "$out/env.txt"

echo "== benchstat (columns: clients; the first, nethttp, is the baseline)"
"$benchstat" -col '/client@(nethttp sdk resty)' "$out/bench.txt" | tee "$out/benchstat.txt"
echo "== ratios (medians)"
go run ./cmd/ratios "$out/bench.txt" | tee "$out/ratios.md"
