package audit

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metrics are the webhook's own Prometheus series, prefixed workspace_webhook_ so they never
// clash with controller-runtime's controller_runtime_webhook_* series.
type Metrics struct {
	Decisions  *prometheus.CounterVec
	Latency    *prometheus.HistogramVec
	Capability *prometheus.CounterVec
	// CacheLastEvent is when each informer last saw a change; a stale value on a busy cluster
	// means the watch is broken and decisions are made on old facts.
	CacheLastEvent *prometheus.GaugeVec
	// WatchDown is 1 while a watch of the API server is down or reconnecting: facts are then
	// read live (agent.Watches).
	WatchDown prometheus.Gauge
}

// NewMetrics creates the series and registers them with reg (nil: controller-runtime's
// registry, which the manager serves on its metrics endpoint).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		reg = metrics.Registry
	}
	m := &Metrics{
		Decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "workspace_webhook_decisions_total",
			Help: "Admission decisions by webhook, decision (allowed, mutated, denied) and reason code.",
		}, []string{"webhook", "decision", "reason"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "workspace_webhook_admission_duration_seconds",
			Help:    "Time from receiving an admission request to answering it, including fact gathering.",
			Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1},
		}, []string{"webhook"}),
		Capability: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "workspace_webhook_capability_answers_total",
			Help: "ReadWriteMany capability answers by source and verdict; verdict Unknown with source None spots unknown provisioners.",
		}, []string{"source", "verdict", "provisioner"}),
		CacheLastEvent: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "workspace_webhook_cache_last_event_timestamp_seconds",
			Help: "Unix time of the last add, update or delete each informer cache received, by resource.",
		}, []string{"resource"}),
		WatchDown: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "workspace_webhook_watch_down",
			Help: "1 while a watch of the API server is down or reconnecting (facts are then read live), else 0.",
		}),
	}
	var err error
	if m.Decisions, err = register(reg, m.Decisions); err != nil {
		return nil, err
	}
	if m.Latency, err = register(reg, m.Latency); err != nil {
		return nil, err
	}
	if m.Capability, err = register(reg, m.Capability); err != nil {
		return nil, err
	}
	if m.CacheLastEvent, err = register(reg, m.CacheLastEvent); err != nil {
		return nil, err
	}
	if m.WatchDown, err = register(reg, m.WatchDown); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector already registered under the same name
// (a webhook started twice in one process, as in tests, shares its series).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}
