// Package reliability proves, with figures, that the webhook neither stops deployments nor
// lets a broken script pod through, and writes RELIABILITY.md (issue 13). Each scenario is a
// test that asserts what is promised and saves a bench.Result: Order places it in the report
// (load 10-19, scale 20-29, faults 30-39, hostile input and security 40-49, fuzzing 50-59),
// Title names the scenario, Config reads "Promise: ... How: ..." for a platform team, and
// Figures carry the targets the issue gives.
//
//	burst_test.go                  10. thousands of script pods created at once through kube-apiserver
//	scale_test.go                  20. the webhook's memory, start-up and admission latency on a large cluster
//	../faults                      30-36. faults: API server restarts, watch drops, replica kills, ...
//	../hostile_test.go             40. TestHostileInput: the catalogue of malformed and hostile input
//	../posture_test.go             41. TestPosture: TLS, HTTP/2, listeners, Pod Security
//	../install/rbac_rules_test.go  42. TestLeastPrivilege: every rendered RBAC rule proven needed
//	fuzz.go                        50. every Go fuzz target (run.sh's fuzz step)
//
// Each saves its Result with Save (save.go). `go test ./...` runs each scenario small (a smoke
// run: correctness and sane numbers, never timings); `make reliability` (run.sh) sets
// RELIABILITY_FULL=1 and RELIABILITY_OUT, runs every reliability package (this one,
// e2e/faults), the three scenario tests of e2e and e2e/install, and every fuzz target, then
// cmd/reliabilityreport renders RELIABILITY.md from the results (report.go, fuzz.go).
package reliability
