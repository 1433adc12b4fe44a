package window

import (
	"fmt"
	"time"

	"github.com/sluicehq/sluice/schemas"
)

// Agg names an aggregation.
type Agg string

// The aggregations of the feature repository format.
const (
	Count          Agg = "count"
	CountTrue      Agg = "count_true"
	Sum            Agg = "sum"
	Mean           Agg = "mean"
	Min            Agg = "min"
	Max            Agg = "max"
	Stddev         Agg = "stddev"
	Last           Agg = "last"
	First          Agg = "first"
	LastN          Agg = "last_n"
	ApproxDistinct Agg = "approx_distinct"
)

// Aggs lists every aggregation, in documentation order.
var Aggs = []Agg{Count, CountTrue, Sum, Mean, Min, Max, Stddev, Last, First, LastN, ApproxDistinct}

// MaxLastN bounds n of last_n.
const MaxLastN = 100

// MinHop is the smallest hop a feature may set.
const MinHop = time.Second

// DefaultHop is the hop of a window that sets none: 5 minutes under 12
// hours, 1 hour under 12 days, else 1 day.
func DefaultHop(w time.Duration) time.Duration {
	switch {
	case w < 12*time.Hour:
		return 5 * time.Minute
	case w < 12*24*time.Hour:
		return time.Hour
	}
	return 24 * time.Hour
}

// Floor rounds a down to a multiple of h since the Unix epoch (h > 0).
func Floor(a, h int64) int64 {
	r := a % h
	if r < 0 {
		r += h
	}
	return a - r
}

// Mode selects which events a value at t may see.
type Mode uint8

const (
	// EventTime sees every event with event time before t.
	EventTime Mode = iota
	// AsServed also requires the event to have arrived before t, which
	// reproduces what the online store could have served at t.
	AsServed
)

// ParseMode parses "event_time" or "as_served".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "event_time", "":
		return EventTime, nil
	case "as_served":
		return AsServed, nil
	}
	return 0, fmt.Errorf("unknown mode %q (use event_time or as_served)", s)
}

func (m Mode) String() string {
	if m == AsServed {
		return "as_served"
	}
	return "event_time"
}

// Spec is one feature as the time rule sees it. Durations are microseconds.
type Spec struct {
	Agg    Agg
	Input  int          // index into Event.Values (or Cells); -1 when the aggregation reads no field (count of events)
	Type   schemas.Type // the input's type; it decides sum's type (int64 or float64)
	Window int64        // 0: lifetime (for last/first: bounded by TTL only)
	Hop    int64        // 0: DefaultHop(Window)
	TTL    int64        // last/first: 0 means unbounded
	N      int          // last_n
}

// ResultType is the type of the spec's values, and whether each is a list
// of that type: counts and approx_distinct are int64, sum keeps an int64
// input's type and is float64 otherwise, mean and stddev are float64,
// last_n is a list of its input's type, and min, max, last and first take
// their input's type.
func (s *Spec) ResultType() (t schemas.Type, list bool) {
	switch s.Agg {
	case Count, CountTrue, ApproxDistinct:
		return schemas.Int64, false
	case Sum:
		if s.Type == schemas.Int64 {
			return schemas.Int64, false
		}
		return schemas.Float64, false
	case Mean, Stddev:
		return schemas.Float64, false
	case LastN:
		return s.Type, true
	}
	return s.Type, false
}

// NewSpec builds a Spec from durations; hop 0 takes the default.
func NewSpec(agg Agg, input int, typ schemas.Type, window, hop, ttl time.Duration, n int) Spec {
	if window > 0 && hop == 0 {
		hop = DefaultHop(window)
	}
	return Spec{Agg: agg, Input: input, Type: typ, Window: window.Microseconds(), Hop: hop.Microseconds(), TTL: ttl.Microseconds(), N: n}
}

// Lower returns the inclusive lower bound of the events the spec's value at
// t aggregates, and false when the spec has none (lifetime).
func (s Spec) Lower(t int64) (int64, bool) {
	switch {
	case s.Agg == Last || s.Agg == First:
		if s.TTL > 0 {
			return t - s.TTL, true
		}
		return 0, false
	case s.Window > 0:
		h := s.Hop
		if h <= 0 {
			h = DefaultHop(time.Duration(s.Window) * time.Microsecond).Microseconds()
		}
		return Floor(t-s.Window, h), true
	}
	return 0, false
}

// Event is one event of one entity, reduced to what the features read.
type Event struct {
	Time    int64 // event time, µs since the Unix epoch
	Arrival int64 // arrival time, µs since the Unix epoch
	// Seq orders events with equal Time: the higher wins ties. Kafka
	// records use SeqOf(partition, offset).
	Seq int64
	// Values are the view's inputs (nil is null), or, when Cells is not
	// nil, Cells are, unboxed.
	Values []any
	Cells  []Cell
}

// SeqOf is the Seq of the record at offset of partition: ties on event time
// go to the higher offset, and partitions only break ties between equal
// offsets, so events of one entity read from several partitions never
// collide. Offsets must be below 2^47 and partitions below 2^16.
func SeqOf(partition int32, offset int64) int64 { return offset<<16 | int64(uint16(partition)) }

// Before reports whether a orders before b: by Time, then by Seq.
func (a *Event) Before(b *Event) bool {
	if a.Time != b.Time {
		return a.Time < b.Time
	}
	return a.Seq < b.Seq
}

// Status says how a value came about, as Feast's serving API reports it.
type Status uint8

// Statuses of a served value.
const (
	Present Status = iota
	NullValue
	NotFound
	OutsideMaxAge
)

func (s Status) String() string {
	switch s {
	case Present:
		return "PRESENT"
	case NullValue:
		return "NULL_VALUE"
	case NotFound:
		return "NOT_FOUND"
	case OutsideMaxAge:
		return "OUTSIDE_MAX_AGE"
	}
	return "UNKNOWN"
}

// Value is a feature's value at some t.
type Value struct {
	V      any // int64, float64, bool, string, []any (last_n) or nil
	Status Status
	// Time is the event time (µs) of the latest event the value includes
	// (for last and first: of the chosen event); HasTime is false when the
	// value includes no event.
	Time    int64
	HasTime bool
}

// DefaultLateness is the allowed_lateness of a view that sets none.
const DefaultLateness = time.Hour
