#!/usr/bin/env bash
# Runs every Go fuzz target of the repository (every `func FuzzX` in a _test.go file) for
# FUZZTIME each, one after the other: Go fuzzes one target per `go test` invocation. Prints
# the executions of each; a failing input is saved under the package's testdata/fuzz/FuzzX
# (commit it: every later `go test` then runs it as a regression case).
# Usage: hack/fuzz.sh [FUZZTIME]   (make fuzz FUZZTIME=5m; make test runs it for 20s each: under load a 10s run can end before the committed seeds are replayed, which Go reports as a failure). New
# interesting inputs are minimized for at most FUZZMINIMIZETIME (default 5s): the default 60s
# stalls every worker on a large input and leaves short runs with almost no executions.
set -uo pipefail
fuzztime=${1:-60s}
cd "$(dirname "$0")/.."

targets=$(find . -path ./bin -prune -o -name '*_test.go' -print | sort |
	xargs grep -Ho '^func Fuzz[A-Za-z0-9_]*' | sed 's/:func / /')
if [ -z "$targets" ]; then
	echo "no fuzz targets found" >&2
	exit 1
fi

failed=0
summary=""
while read -r file target; do
	pkg=./$(dirname "${file#./}")
	echo "== $target ($pkg) for $fuzztime"
	log=$(mktemp)
	go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime "${FUZZMINIMIZETIME:-5s}" >"$log" 2>&1
	rc=$?
	# The progress lines are many; keep the last and anything else (failures, PASS/FAIL).
	grep -v '^fuzz: elapsed' "$log"
	last=$(grep '^fuzz: elapsed' "$log" | tail -1)
	[ -n "$last" ] && echo "$last"
	execs=$(sed -n 's/.*execs: \([0-9]*\).*/\1/p' <<<"$last")
	result=ok
	if [ $rc -ne 0 ]; then
		result=FAIL
		failed=1
	fi
	summary+=$(printf '%-22s %-26s %12s execs  %s' "$target" "$pkg" "${execs:-?}" "$result")$'\n'
	rm -f "$log"
done <<<"$targets"

echo
echo "fuzz targets, $fuzztime each:"
printf '%s' "$summary"
exit $failed
