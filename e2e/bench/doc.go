// Package bench measures what the webhook costs a script pod, each figure next to its
// baseline in the same run (see BENCHMARKS.md at the repository root):
//
//	inprocess_test.go  the admission path in-process vs decode+encode of the same review
//	https_test.go      the real webhook server over HTTPS on loopback vs a no-op handler
//	apiserver_test.go  script-pod creation through kube-apiserver with vs without the webhooks
//	memory_test.go     the webhook process's RSS on a populated vs an empty cluster
//	startup_test.go    process start to /readyz and to the first admission answered
//
// `go test ./...` runs each measurement briefly (a smoke run that asserts only that it
// produced sane numbers); `make bench` (run.sh) sets BENCH_FULL=1 and BENCH_OUT and runs
// the full configurations, then cmd/benchreport writes .bench/results.md.
//
// The non-test files hold what the report tool and e2e/reliability share with the tests:
// statistics (stats.go), results and the report (report.go), the load generator (loadgen.go)
// and a populated cluster's objects (population.go). The webhook as its own process is
// package e2e/webhookprocess.
package bench
