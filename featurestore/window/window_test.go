package window_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/featurestore/window"
	"github.com/sluicehq/sluice/schemas"
)

// us returns the microseconds since the Unix epoch of an RFC 3339 time.
func us(t testing.TB, s string) int64 {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("parse time %q: %v", s, err)
	}
	return tm.UnixMicro()
}

func TestFloor(t *testing.T) {
	const (
		sec  = int64(time.Second / time.Microsecond)
		min5 = 5 * 60 * sec
		day  = 24 * 3600 * sec
	)
	tests := []struct {
		name string
		a, h int64
		want int64
	}{
		{"zero", 0, 5, 0},
		{"positive multiple", 10, 5, 10},
		{"positive rounds down", 14, 5, 10},
		{"one below a multiple", 9, 5, 5},
		{"hop of one", 7, 1, 7},
		{"minus one rounds away from zero", -1, 5, -5},
		{"negative multiple", -5, 5, -5},
		{"negative just below a multiple", -6, 5, -10},
		{"negative just above a multiple", -4, 5, -5},
		{"a below h in size", 3, 10, 0},
		{"negative a below h in size", -3, 10, -10},
		{"5m hop, 2026", us(t, "2026-01-01T10:07:30Z"), min5, us(t, "2026-01-01T10:05:00Z")},
		{"5m hop, on the hop", us(t, "2026-01-01T10:05:00Z"), min5, us(t, "2026-01-01T10:05:00Z")},
		{"5m hop, 1µs before the hop", us(t, "2026-01-01T10:04:59.999999Z"), min5, us(t, "2026-01-01T10:00:00Z")},
		{"5m hop, 1969", us(t, "1969-12-31T23:57:00Z"), min5, us(t, "1969-12-31T23:55:00Z")},
		{"5m hop, 1µs before the epoch", -1, min5, us(t, "1969-12-31T23:55:00Z")},
		{"1d hop, 1969", us(t, "1969-12-31T23:30:00Z"), day, us(t, "1969-12-31T00:00:00Z")},
		{"1d hop, 1960", us(t, "1960-03-01T12:00:00Z"), day, us(t, "1960-03-01T00:00:00Z")},
		{"1d hop, midnight 1960", us(t, "1960-03-01T00:00:00Z"), day, us(t, "1960-03-01T00:00:00Z")},
		{"7m hop counts from the epoch", 10 * 60 * sec, 7 * 60 * sec, 7 * 60 * sec},
		{"7m hop before the epoch", -10 * 60 * sec, 7 * 60 * sec, -14 * 60 * sec},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := window.Floor(tt.a, tt.h); got != tt.want {
				t.Errorf("Floor(%d, %d) = %d, want %d", tt.a, tt.h, got, tt.want)
			}
		})
	}
}

func TestDefaultHop(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		w    time.Duration
		want time.Duration
	}{
		{time.Second, 5 * time.Minute},
		{time.Hour, 5 * time.Minute},
		{11*time.Hour + 59*time.Minute, 5 * time.Minute},
		{12*time.Hour - time.Microsecond, 5 * time.Minute},
		{12*time.Hour - time.Nanosecond, 5 * time.Minute},
		{12 * time.Hour, time.Hour},
		{24 * time.Hour, time.Hour},
		{7 * day, time.Hour},
		{12*day - time.Microsecond, time.Hour},
		{12*day - time.Nanosecond, time.Hour},
		{12 * day, day},
		{30 * day, day},
		{365 * day, day},
	}
	for _, tt := range tests {
		if got := window.DefaultHop(tt.w); got != tt.want {
			t.Errorf("DefaultHop(%v) = %v, want %v", tt.w, got, tt.want)
		}
	}
}

func TestNewSpec(t *testing.T) {
	tests := []struct {
		name                string
		agg                 window.Agg
		window, hop, ttl    time.Duration
		wantWindow, wantHop int64
		wantTTL             int64
	}{
		{"default hop under 12h", window.Count, time.Hour, 0, 0, 3_600_000_000, 300_000_000, 0},
		{"default hop at 12h", window.Count, 12 * time.Hour, 0, 0, 43_200_000_000, 3_600_000_000, 0},
		{"explicit hop kept", window.Sum, time.Hour, time.Second, 0, 3_600_000_000, 1_000_000, 0},
		{"lifetime has no hop", window.Count, 0, 0, 0, 0, 0, 0},
		{"ttl in micros", window.Last, 0, 0, 30 * time.Second, 0, 0, 30_000_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := window.NewSpec(tt.agg, 2, schemas.Int64, tt.window, tt.hop, tt.ttl, 7)
			want := window.Spec{Agg: tt.agg, Input: 2, Type: schemas.Int64, Window: tt.wantWindow, Hop: tt.wantHop, TTL: tt.wantTTL, N: 7}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("NewSpec (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSpecLower(t *testing.T) {
	const (
		hour = int64(time.Hour / time.Microsecond)
		sec  = int64(time.Second / time.Microsecond)
	)
	tests := []struct {
		name    string
		spec    window.Spec
		t       string
		want    string // "" when unbounded
		bounded bool
	}{
		{"1h window, t on a hop", window.Spec{Agg: window.Count, Window: hour, Hop: 5 * 60 * sec}, "2026-01-01T11:00:00Z", "2026-01-01T10:00:00Z", true},
		{"1h window, tail floors to the hop", window.Spec{Agg: window.Count, Window: hour, Hop: 5 * 60 * sec}, "2026-01-01T11:04:59.999999Z", "2026-01-01T10:00:00Z", true},
		{"1h window, next hop", window.Spec{Agg: window.Count, Window: hour, Hop: 5 * 60 * sec}, "2026-01-01T11:05:00Z", "2026-01-01T10:05:00Z", true},
		{"hop 0 takes the default (5m)", window.Spec{Agg: window.Count, Window: hour}, "2026-01-01T11:04:00Z", "2026-01-01T10:00:00Z", true},
		{"hop 0 takes the default (1h)", window.Spec{Agg: window.Sum, Window: 24 * hour}, "2026-01-02T11:59:00Z", "2026-01-01T11:00:00Z", true},
		{"hop 0 takes the default (1d)", window.Spec{Agg: window.Max, Window: 30 * 24 * hour}, "2026-01-31T23:00:00Z", "2026-01-01T00:00:00Z", true},
		{"1s hop", window.Spec{Agg: window.Mean, Window: hour, Hop: sec}, "2026-01-01T11:00:00.5Z", "2026-01-01T10:00:00Z", true},
		{"before 1970", window.Spec{Agg: window.Count, Window: hour, Hop: 5 * 60 * sec}, "1969-12-31T23:33:00Z", "1969-12-31T22:30:00Z", true},
		{"across the epoch", window.Spec{Agg: window.Count, Window: hour, Hop: 5 * 60 * sec}, "1970-01-01T00:33:00Z", "1969-12-31T23:30:00Z", true},
		{"lifetime", window.Spec{Agg: window.Count}, "2026-01-01T11:00:00Z", "", false},
		{"last with ttl is exact, no hop", window.Spec{Agg: window.Last, TTL: hour}, "2026-01-01T11:04:59.999999Z", "2026-01-01T10:04:59.999999Z", true},
		{"first with ttl", window.Spec{Agg: window.First, TTL: 30 * sec}, "1969-12-31T23:59:50Z", "1969-12-31T23:59:20Z", true},
		{"last without ttl is unbounded", window.Spec{Agg: window.Last}, "2026-01-01T11:00:00Z", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.spec.Lower(us(t, tt.t))
			if ok != tt.bounded {
				t.Fatalf("Lower(%s) bounded = %v, want %v", tt.t, ok, tt.bounded)
			}
			if !ok {
				return
			}
			if want := us(t, tt.want); got != want {
				t.Errorf("Lower(%s) = %s, want %s", tt.t, time.UnixMicro(got).UTC().Format(time.RFC3339Nano), tt.want)
			}
		})
	}
}

func TestParseMode(t *testing.T) {
	tests := []struct {
		in      string
		want    window.Mode
		wantErr string
	}{
		{"event_time", window.EventTime, ""},
		{"", window.EventTime, ""},
		{"as_served", window.AsServed, ""},
		{"asServed", 0, `unknown mode "asServed" (use event_time or as_served)`},
		{"EVENT_TIME", 0, `unknown mode "EVENT_TIME" (use event_time or as_served)`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := window.ParseMode(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ParseMode(%q) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseMode(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			if tt.in != "" && got.String() != tt.in {
				t.Errorf("ParseMode(%q).String() = %q, want it to round-trip", tt.in, got.String())
			}
		})
	}
}

func TestStatusString(t *testing.T) {
	want := map[window.Status]string{
		window.Present:       "PRESENT",
		window.NullValue:     "NULL_VALUE",
		window.NotFound:      "NOT_FOUND",
		window.OutsideMaxAge: "OUTSIDE_MAX_AGE",
		window.Status(200):   "UNKNOWN",
	}
	for s, w := range want {
		if s.String() != w {
			t.Errorf("Status(%d).String() = %q, want %q", s, s.String(), w)
		}
	}
}

func TestEventBefore(t *testing.T) {
	a := window.Event{Time: 10, Seq: 5}
	tests := []struct {
		b    window.Event
		want bool
	}{
		{window.Event{Time: 11, Seq: 0}, true},
		{window.Event{Time: 9, Seq: 9}, false},
		{window.Event{Time: 10, Seq: 6}, true},
		{window.Event{Time: 10, Seq: 4}, false},
		{window.Event{Time: 10, Seq: 5}, false},
	}
	for _, tt := range tests {
		if got := a.Before(&tt.b); got != tt.want {
			t.Errorf("(%+v).Before(%+v) = %v, want %v", a, tt.b, got, tt.want)
		}
	}
}

// allSpecs returns one spec of every aggregation over input 0 (int64),
// windowed by 1h, plus a lifetime count.
func allSpecs() []window.Spec {
	var specs []window.Spec
	for _, agg := range window.Aggs {
		s := window.NewSpec(agg, 0, schemas.Int64, time.Hour, 0, 0, 3)
		if agg == window.Last || agg == window.First {
			s = window.NewSpec(agg, 0, schemas.Int64, 0, 0, time.Hour, 0)
		}
		specs = append(specs, s)
	}
	return append(specs, window.NewSpec(window.Count, -1, 0, 0, 0, 0, 0))
}

// TestEvalConcurrentReadOnly runs Eval from many goroutines over one shared
// slice of events (as the online read path does) and checks, under -race,
// that it neither writes to its inputs nor returns values that alias them.
func TestEvalConcurrentReadOnly(t *testing.T) {
	base := us(t, "2026-01-01T10:00:00Z")
	var events []window.Event
	for i := range 50 {
		var v any = int64(i)
		if i%7 == 0 {
			v = nil
		}
		events = append(events, window.Event{Time: base + int64(i)*60_000_000, Arrival: base + int64(i)*90_000_000, Seq: int64(i), Values: []any{v}})
	}
	snapshot := func() []window.Event {
		c := make([]window.Event, len(events))
		for i, e := range events {
			c[i] = e
			c[i].Values = append([]any(nil), e.Values...)
		}
		return c
	}
	before := snapshot()
	specs := allSpecs()
	lastN := slices.Index(window.Aggs, window.LastN)
	at := base + 40*60_000_000
	want := make([]window.Value, len(specs))
	window.Eval(at, window.AsServed, specs, events, want)

	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for g := range 16 {
		wg.Go(func() {
			out := make([]window.Value, len(specs))
			window.Eval(at, window.AsServed, specs, events, out)
			if diff := cmp.Diff(want, out); diff != "" {
				errs <- fmt.Sprintf("goroutine %d: %s", g, diff)
			}
			// Changing a returned last_n must not change the events.
			if l, ok := out[lastN].V.([]any); ok && len(l) > 0 {
				l[0] = "changed"
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("concurrent Eval differs from a lone one: %s", e)
	}
	if diff := cmp.Diff(before, events); diff != "" {
		t.Errorf("Eval changed its events (-before +after):\n%s", diff)
	}
	if _, ok := want[lastN].V.([]any); !ok {
		t.Fatalf("last_n = %#v, want a list (the aliasing check needs one)", want[lastN].V)
	}
}
