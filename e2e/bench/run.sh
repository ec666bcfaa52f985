#!/usr/bin/env bash
# `make bench`: every benchmark figure next to its baseline, measured in one run.
# Usage: bash e2e/bench/run.sh [COUNT]   (COUNT: in-process benchmark repetitions, default 6)
#        BENCH_ONLY="inprocess https" bash e2e/bench/run.sh   (a subset of: inprocess https apiserver memory startup)
# Output: .bench/results.md (table + raw data), plus the raw files and profiles in .bench/.
set -euo pipefail

count=${1:-6}
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/.bench
go=${GO:-go}
# benchstat, pinned so that runs compare like with like (fetched from the Go module proxy).
benchstat_pkg=${BENCHSTAT:-golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da}

cd "$root"
only=" ${BENCH_ONLY:-inprocess https apiserver memory startup} "
want() { [[ $only == *" $1 "* ]]; }
command="make bench BENCH_COUNT=$count"
if [ -z "${BENCH_ONLY:-}" ]; then
	rm -rf "$out"
else # re-measure a subset; the report keeps the other figures of the previous run
	for name in $only; do rm -f "$out/$name".*; done
	command="BENCH_ONLY=\"${BENCH_ONLY}\" $command"
fi
mkdir -p "$out"
export BENCH_FULL=1 BENCH_OUT=$out
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$root" status --porcelain 2>/dev/null | head -1)" ]; then commit="$commit (working tree modified)"; fi

# shellcheck source=../../hack/steps.sh
source "$root/hack/steps.sh" # busy, step: the machine's load noted before each step
failed=()

step "building the webhook (production flags, as make build) and the benchmark binary"
CGO_ENABLED=0 "$go" build -trimpath -o "$out/workspace-webhook" ./cmd/workspace-webhook
export WEBHOOK_BIN=$out/workspace-webhook
"$go" test -c -o "$out/bench.test" ./e2e/bench
bench() { (cd "$root/e2e/bench" && "$out/bench.test" "$@"); }

if want inprocess; then
	step "1. in-process admission path: $count runs, each running floor and webhook back to back"
	for i in $(seq "$count"); do
		bench -test.run '^$' -test.bench 'Mutate' -test.benchmem -test.benchtime 2s -test.count 1 | tee -a "$out/inprocess.bench.txt"
	done
	if "$go" run "$benchstat_pkg" -col /handler "$out/inprocess.bench.txt" >"$out/inprocess.benchstat.txt" 2>"$out/benchstat.err"; then
		cat "$out/inprocess.benchstat.txt"
	else
		echo "benchstat unavailable ($(head -c 300 "$out/benchstat.err")); the report uses medians only" | tee "$out/inprocess.benchstat.txt"
	fi
	step "1b. where the in-process time and allocations go (profiles of the webhook path)"
	bench -test.run '^$' -test.bench 'Mutate/handler=webhook' -test.benchmem -test.benchtime 5s -test.count 1 \
		-test.cpuprofile "$out/inprocess.cpu.pprof" -test.memprofile "$out/inprocess.mem.pprof" >/dev/null
	{
		echo "--- decoding the same review, broken down (BenchmarkDecode, e2e/bench/decode_test.go)"
		bench -test.run '^$' -test.bench 'Decode' -test.benchmem -test.benchtime 2s -test.count 1 | grep '^Benchmark'
		echo "--- CPU, cumulative, BenchmarkMutate/handler=webhook"
		"$go" tool pprof -top -cum -nodecount=45 "$out/bench.test" "$out/inprocess.cpu.pprof" 2>/dev/null | sed -n '6,60p'
		echo "--- allocations (count), BenchmarkMutate/handler=webhook"
		"$go" tool pprof -sample_index=alloc_objects -top -nodecount=25 "$out/bench.test" "$out/inprocess.mem.pprof" 2>/dev/null | sed -n '6,40p'
	} >"$out/inprocess.pprof.txt"
fi

if want https; then
	step "2. HTTPS on loopback: webhook vs no-op handler, alternating"
	bench -test.run '^TestHTTPS$' -test.v -test.timeout 20m -test.cpuprofile "$out/https.cpu.pprof" | tee "$out/https.log" || failed+=(https)
	[ -s "$out/https.cpu.pprof" ] && {
		echo "--- CPU of the whole test process (server and load generator), cumulative"
		"$go" tool pprof -top -cum -nodecount=40 "$out/bench.test" "$out/https.cpu.pprof" 2>/dev/null | sed -n '6,55p'
	} >"$out/https.pprof.txt"
fi

if want apiserver; then
	step "3. script-pod creation through kube-apiserver: our webhook + policy vs one no-op webhook call vs none, rotating"
	bench -test.run '^TestAPIServer$' -test.v -test.timeout 30m | tee "$out/apiserver.log" || failed+=(apiserver)
	# Where kube-apiserver's CPU goes in each side's first phase: the share spent dispatching
	# webhooks (k8s.io/apiserver/pkg/admission/plugin/webhook) is in each header line.
	for f in "$out"/apiserver.*.cpu.pprof; do
		[ -s "$f" ] || continue
		{
			echo "--- kube-apiserver CPU, $(basename "$f" .cpu.pprof) (round 1; pods created: see round 1 above): webhook dispatch, cumulative"
			"$go" tool pprof -top -cum -nodecount=14 -focus 'apiserver/pkg/admission/plugin/webhook' "$f" 2>/dev/null | sed -n '4,5p;11,25p'
			if [[ $f == *.ours.* ]]; then
				echo "--- where a mutating call's time goes in kube-apiserver ($(basename "$f" .cpu.pprof))"
				"$go" tool pprof -peek 'mutatingDispatcher..callAttrMutatingHook$' "$f" 2>/dev/null | sed -n '10,22p'
			fi
		} >>"$out/apiserver.pprof.txt"
	done
fi

if want memory; then
	step "4. memory: populated vs empty cluster (waits for the runtime's forced GCs: several minutes)"
	bench -test.run '^TestMemory$' -test.v -test.timeout 40m | tee "$out/memory.log" || failed+=(memory)
fi

if want startup; then
	step "5. start-up: process start to ready and to first admission"
	bench -test.run '^TestStartup$' -test.v -test.timeout 10m | tee "$out/startup.log" || failed+=(startup)
fi

step "report"
"$go" run ./e2e/bench/cmd/benchreport -dir "$out" -command "$command" -commit "$commit"
echo "results: $out/results.md"
if [ ${#failed[@]} -gt 0 ]; then
	echo "FAILED (no figures, see .bench/<name>.log): ${failed[*]}" >&2
	exit 1
fi
