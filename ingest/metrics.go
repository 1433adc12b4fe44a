package ingest

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Prometheus series of a Handler. Labels name streams and
// status codes, never entities.
type metrics struct {
	accepted *prometheus.CounterVec   // stream
	rejected *prometheus.CounterVec   // stream
	requests *prometheus.CounterVec   // code
	produce  *prometheus.HistogramVec // stream
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_ingest_events_accepted_total",
			Help: "Events acknowledged by Kafka, by stream.",
		}, []string{"stream"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_ingest_events_rejected_total",
			Help: "Events rejected as invalid, by stream.",
		}, []string{"stream"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_ingest_requests_total",
			Help: "Ingest HTTP requests, by response status code.",
		}, []string{"code"}),
		produce: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_ingest_produce_duration_seconds",
			Help:    "Time from producing a request's records to Kafka's acknowledgement of all of them, by stream.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 15), // 0.5 ms to 8 s
		}, []string{"stream"}),
	}
	if reg == nil {
		return m
	}
	m.accepted = register(reg, m.accepted)
	m.rejected = register(reg, m.rejected)
	m.requests = register(reg, m.requests)
	m.produce = register(reg, m.produce)
	return m
}

// register registers c, or returns the identical collector already
// registered, so that several handlers can share one registry.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	panic("ingest: register metrics: " + err.Error())
}
