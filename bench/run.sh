#!/usr/bin/env bash
# Runs the comparison benchmarks (go test -run '^$' -bench … -benchmem,
# $COUNT rounds) and prints benchstat tables and the
# SDK/net/http and resty/net/http ratios. Usage: ./run.sh [out-dir]
# Environment: COUNT (default 8), MANY_COUNT (default 2; 0 skips
# BenchmarkUpsertMany, which takes ~12 s a round on a quiet machine),
# OBSERVER_COUNT (default 8; 0 skips BenchmarkObserver), GUARANTEE_COUNT
# (default 6; 0 skips the guarantee-cost rounds), TOKEN_COUNT (default 6;
# 0 skips BenchmarkAppToken), HANDLER_COUNT (default 6; 0 skips the
# webhook handlers, run in ../redisdedup against a real redis-server).
set -euo pipefail
cd "$(dirname "$0")"
out=${1:-results}
mkdir -p "$out"
abs=$(cd "$out" && pwd)
count=${COUNT:-8}
many=${MANY_COUNT:-2}
observer=${OBSERVER_COUNT:-8}
guarantee=${GUARANTEE_COUNT:-6}
token=${TOKEN_COUNT:-6}
handler=${HANDLER_COUNT:-6}
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

if [ "$guarantee" != 0 ]; then
	# The mechanisms can be switched off only in this build (the tag
	# convo_benchoff); a shipped build has no switch.
	echo "== what each guarantee costs ($guarantee rounds; CONVO_BENCH_OFF switches one mechanism off)"
	go test -c -tags convo_benchoff -o "$out/bench-off.test" .
	: >"$out/guarantees.txt"
	for i in $(seq "$guarantee"); do
		for m in none deadline retry redirect cap; do
			CONVO_BENCH_OFF=${m#none} "$out/bench-off.test" -test.run '^$' -test.bench '^BenchmarkGuarantees$' \
				-test.count 1 -test.benchmem | tee -a "$out/guarantees.txt"
		done
	done
	"$benchstat" -col '/off@(none deadline retry redirect cap)' "$out/guarantees.txt" | tee "$out/guarantees-benchstat.txt"
fi

if [ "$token" != 0 ]; then
	echo "== BenchmarkAppToken ($token rounds): the secret key against an app token minted for each request"
	: >"$out/apptoken.txt"
	for i in $(seq "$token"); do
		"$out/bench.test" -test.run '^$' -test.bench '^BenchmarkAppToken$' \
			-test.count 1 -test.benchmem | tee -a "$out/apptoken.txt"
	done
	"$benchstat" -col '/client@(sdk sdk-token)' "$out/apptoken.txt" | tee "$out/apptoken-benchstat.txt"
fi

if [ "$handler" != 0 ]; then
	echo "== webhook handlers ($handler rounds): convo's Selarti handler against a hand-written one, memory and Redis stores"
	(cd ../redisdedup && go test -c -o "$abs/redisdedup.test" .)
	: >"$out/handlers.txt"
	for i in $(seq "$handler"); do
		(cd ../redisdedup && "$abs/redisdedup.test" -test.run '^$' -test.bench '^BenchmarkHandlers$' \
			-test.count 1 -test.benchmem) | tee -a "$out/handlers.txt"
	done
	"$benchstat" -col '/client@(nethttp sdk)' "$out/handlers.txt" | tee "$out/handlers-benchstat.txt"
fi

echo "== heap of a 100,000-message list"
"$out/bench.test" -test.run '^TestListHeapFlat$' -test.v | tee "$out/heap.txt"

echo "load after: $(uptime)" | tee -a "$out/env.txt"

echo "== benchstat (columns: clients; the first, nethttp, is the baseline)"
"$benchstat" -col '/client@(nethttp sdk resty)' "$out/bench.txt" | tee "$out/benchstat.txt"
echo "== ratios (medians)"
go run ./cmd/ratios "$out/bench.txt" | tee "$out/ratios.md"
