// Package audit records every admission decision in one place, once: audit annotations on
// the admission response (the kube-apiserver writes them into its audit log, so they outlive
// the webhook), a Kubernetes Event for each denial (and each would-deny: a refusal warn mode
// admitted), Prometheus metrics, and one structured log line. Reason codes come from package
// reason.
package audit
