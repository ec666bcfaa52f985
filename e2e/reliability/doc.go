// Package reliability proves, with figures, that the webhook neither stops deployments nor
// lets a broken script pod through, and writes RELIABILITY.md (issue 13). Each scenario is a
// test that asserts what is promised and saves a bench.Result: Order places it in the report
// (load 10-19, scale 20-29, faults 30-49, fuzzing and hostile input 50-59, security 60-69),
// Title names the scenario, Config reads "Promise: ... How: ..." for a platform team, and
// Figures carry the targets the issue gives.
//
//	burst_test.go   10. thousands of script pods created at once through kube-apiserver
//	scale_test.go   20. the webhook's memory, start-up and admission latency on a large cluster
//
// `go test ./...` runs each scenario small (a smoke run: correctness and sane numbers, never
// timings); `make reliability` (run.sh) sets RELIABILITY_FULL=1 and RELIABILITY_OUT, runs
// every reliability package (this one, e2e/faults when present) and every fuzz target, then
// cmd/reliabilityreport renders RELIABILITY.md from the results (report.go, fuzz.go).
package reliability
