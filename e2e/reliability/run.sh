#!/usr/bin/env bash
# `make reliability`: every reliability scenario at full size, every Go fuzz target, then
# RELIABILITY.md rewritten from the results (cmd/reliabilityreport). The scenarios are the tests
# of e2e/reliability and e2e/faults, and three tests of other packages that have no smaller
# version: TestHostileInput and TestPosture (e2e), TestLeastPrivilege (e2e/install).
# Usage: bash e2e/reliability/run.sh
#   FUZZTIME=2m                  per fuzz target (default 2m); FUZZTIME=0 skips fuzzing (the last fuzz results stay)
#   RELIABILITY_RUN='TestBurst'  only the tests matching this -run pattern (other results stay); of the three
#                                tests above, those whose name matches its first part (grep -E) run
#   RELIABILITY_SCALE_PODS=20000 fewer unrelated pods in the scale scenario (say so when committing)
# Output: .reliability/ (git-ignored): <name>.json results, each package's log, fuzz.tsv, the
# webhook build measured; RELIABILITY.md at the repository root.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/.reliability
go=${GO:-go}
fuzztime=${FUZZTIME:-2m}
cd "$root"

command="make reliability"
[ -n "${RELIABILITY_RUN:-}" ] && command="RELIABILITY_RUN='$RELIABILITY_RUN' $command"
[ -n "${RELIABILITY_SCALE_PODS:-}" ] && command="RELIABILITY_SCALE_PODS=$RELIABILITY_SCALE_PODS $command"
[ "$fuzztime" != 2m ] && command="FUZZTIME=$fuzztime $command"
if [ -z "${RELIABILITY_RUN:-}" ] && [ "$fuzztime" != 0 ]; then
	rm -rf "$out" # everything is measured again
fi
mkdir -p "$out"
export RELIABILITY_FULL=1 RELIABILITY_OUT=$out
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain 2>/dev/null | grep -v '^?? \|RELIABILITY.md' | head -1)" ]; then commit="$commit (working tree modified)"; fi

# shellcheck source=../../hack/steps.sh
source "$root/hack/steps.sh" # busy, step: the machine's load noted before each step
failed=()

step "build: the webhook as make build makes it (production flags); the scenarios run this binary"
CGO_ENABLED=0 "$go" build -trimpath -o "$out/workspace-webhook" ./cmd/workspace-webhook
export WEBHOOK_BIN=$out/workspace-webhook

# Every reliability package present: this one, and e2e/faults once it exists. Tests of a
# package run one after another, so the burst and the scale scenarios never overlap.
for pkg in e2e/reliability e2e/faults; do
	[ -d "$pkg" ] || continue
	name=$(basename "$pkg")
	step "$name: go test ./$pkg (RELIABILITY_FULL=1)"
	args=(-count=1 -v -timeout 150m)
	[ -n "${RELIABILITY_RUN:-}" ] && args+=(-run "$RELIABILITY_RUN")
	"$go" test "${args[@]}" "./$pkg" 2>&1 | tee "$out/$name.log" || failed+=("$name")
done

# Scenarios that are tests of other packages, run by name (their packages hold many other
# tests): with RELIABILITY_RUN set, only the names it matches (its part before any '/', as an
# extended regular expression); a package none of whose names match is skipped.
scenarios() { # package, then its scenario tests
	local pkg=$1 picked=() t
	shift
	for t in "$@"; do
		if [ -z "${RELIABILITY_RUN:-}" ] || grep -qE -- "${RELIABILITY_RUN%%/*}" <<<"$t"; then picked+=("$t"); fi
	done
	[ ${#picked[@]} -gt 0 ] || return 0
	local pattern name
	pattern="^($(IFS='|'; echo "${picked[*]}"))\$"
	name=$(basename "$pkg")
	step "$name: go test ./$pkg -run '$pattern'"
	"$go" test -count=1 -v -timeout 60m -run "$pattern" "./$pkg" 2>&1 | tee "$out/$name.log" || failed+=("$name")
}
scenarios e2e TestHostileInput TestPosture
scenarios e2e/install TestLeastPrivilege

if [ "$fuzztime" != 0 ]; then
	step "fuzz: every Go fuzz target for $fuzztime"
	rm -f "$out"/fuzz.*
	FUZZ_OUT=$out bash hack/fuzz.sh "$fuzztime" || failed+=(fuzz)
fi

step "report: RELIABILITY.md"
"$go" run ./e2e/reliability/cmd/reliabilityreport -dir "$out" -out "$root/RELIABILITY.md" -command "$command" -commit "$commit"
echo "written: RELIABILITY.md (results and logs in .reliability/)"
if [ ${#failed[@]} -gt 0 ]; then
	echo "FAILED: ${failed[*]} (see .reliability/<name>.log, .reliability/fuzz.<Target>.log)" >&2
	exit 1
fi
