// Package webhookprocess runs cmd/workspace-webhook as its own process on loopback, as a
// cluster runs it, for the measurements that need the real binary (e2e/bench, e2e/reliability):
// the production build or one built once per test binary (binary.go), start-up and probes
// (process.go), resident memory and GC trace (memory.go), its metrics endpoint (metrics.go),
// serving certificates (certs.go), and AdmissionReviews posted over HTTPS as the API server
// posts them (reviews.go). A process is stopped by its own pid only, and the kernel kills it
// if the test binary dies first (Linux).
package webhookprocess
