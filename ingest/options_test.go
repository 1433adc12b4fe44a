package ingest

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		opts Options
		err  string
	}{
		{Options{}, ""},
		{Options{MaxBodyBytes: 1, MaxInFlight: 1, ProduceTimeout: time.Millisecond}, ""},
		{Options{MaxBodyBytes: -1}, "ingest: MaxBodyBytes is -1: use a positive size or 0 for the default"},
		{Options{MaxInFlight: -2}, "ingest: MaxInFlight is -2: use a positive count or 0 for the default"},
		{Options{ProduceTimeout: -time.Second}, "ingest: ProduceTimeout is -1s: use a positive duration or 0 for the default"},
	}
	for _, tt := range tests {
		err := tt.opts.Validate()
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.err {
			t.Errorf("Validate(%+v) = %q, want %q", tt.opts, got, tt.err)
		}
	}
}

func TestOptionsDefaults(t *testing.T) {
	h := New(nil, testStreams{}, Options{MaxBodyBytes: -5})
	if h.opts.MaxBodyBytes != DefaultMaxBodyBytes || h.opts.MaxInFlight != DefaultMaxInFlight ||
		h.opts.ProduceTimeout != DefaultProduceTimeout || cap(h.slots) != DefaultMaxInFlight {
		t.Errorf("defaults: %+v, slots %d", h.opts, cap(h.slots))
	}
}

func TestHandlersShareARegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := New(nil, testStreams{}, Options{Registerer: reg})
	b := New(nil, testStreams{}, Options{Registerer: reg})
	if a.m.accepted != b.m.accepted || a.m.produce != b.m.produce {
		t.Error("a second handler on the same registry got its own collectors")
	}
	a.m.accepted.WithLabelValues("transactions").Add(2)
	b.m.accepted.WithLabelValues("transactions").Add(3)
	if got := metric(t, reg, "sluice_ingest_events_accepted_total", map[string]string{"stream": "transactions"}); got != 5 {
		t.Errorf("accepted total = %v, want 5", got)
	}
}
