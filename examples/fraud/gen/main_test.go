package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fixedClock returns a clock that moves 1ms on every call.
func fixedClock() func() time.Time {
	t := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	return func() time.Time {
		t = t.Add(time.Millisecond)
		return t
	}
}

func TestRunCount(t *testing.T) {
	var a, b bytes.Buffer
	args := []string{"-n", "50", "-rate", "0", "-seed", "9", "-users", "20", "-merchants", "5", "-id-prefix", ""}
	if err := run(context.Background(), args, &a, io.Discard, fixedClock()); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), args, &b, io.Discard, fixedClock()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a.String(), b.String()); diff != "" {
		t.Errorf("same seed and clock, different output (-first +second):\n%s", diff)
	}
	lines := strings.Split(strings.TrimSuffix(a.String(), "\n"), "\n")
	if len(lines) != 50 {
		t.Fatalf("got %d lines, want 50", len(lines))
	}
	var first struct {
		TxnID   string `json:"txn_id"`
		EventID string `json:"_event_id"`
		TS      int64  `json:"ts"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatalf("line 1 %s: %v", lines[0], err)
	}
	if first.TxnID != "t1" || first.EventID != "t1" {
		t.Errorf("line 1 has txn_id %q and _event_id %q, want both t1", first.TxnID, first.EventID)
	}
	if first.TS <= time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli() {
		t.Errorf("line 1 has ts %d, want a time from the clock", first.TS)
	}
}

func TestRunIDPrefix(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // _event_id of the first event
	}{
		{"explicit", []string{"-id-prefix", "demo-"}, "demo-t1"},
		{"empty", []string{"-id-prefix", ""}, "t1"},
		// The clock's first reading is 2026-03-01T12:00:00.001Z.
		{"default", nil, strconv.FormatInt(time.Date(2026, 3, 1, 12, 0, 0, 1e6, time.UTC).UnixMilli(), 36) + "-t1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			args := append([]string{"-n", "1", "-rate", "0"}, tt.args...)
			if err := run(context.Background(), args, &out, io.Discard, fixedClock()); err != nil {
				t.Fatal(err)
			}
			var ev struct {
				TxnID   string `json:"txn_id"`
				EventID string `json:"_event_id"`
			}
			if err := json.Unmarshal(out.Bytes(), &ev); err != nil {
				t.Fatalf("%s: %v", out.Bytes(), err)
			}
			if ev.TxnID != tt.want || ev.EventID != tt.want {
				t.Errorf("txn_id %q, _event_id %q, want both %q", ev.TxnID, ev.EventID, tt.want)
			}
		})
	}
}

func TestRunRate(t *testing.T) {
	var out bytes.Buffer
	start := time.Now()
	if err := run(context.Background(), []string{"-n", "30", "-rate", "100"}, &out, io.Discard, time.Now); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "\n"); n != 30 {
		t.Fatalf("got %d lines, want 30", n)
	}
	// 30 events at 100/s take at least 290ms: the first is free, then one
	// every 10ms.
	if el := time.Since(start); el < 250*time.Millisecond {
		t.Errorf("30 events at -rate 100 took %v, want them paced", el)
	}
}

// cancelAfter cancels a context once it has seen n lines.
type cancelAfter struct {
	n      int
	cancel context.CancelFunc
	buf    bytes.Buffer
}

func (c *cancelAfter) Write(p []byte) (int, error) {
	c.buf.Write(p)
	if strings.Count(c.buf.String(), "\n") >= c.n {
		c.cancel()
	}
	return len(p), nil
}

func TestRunStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &cancelAfter{n: 100, cancel: cancel}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-rate", "0"}, w, io.Discard, time.Now) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after cancel: %v, want a clean stop", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop after its context was cancelled")
	}
	sc := bufio.NewScanner(&w.buf)
	for sc.Scan() {
		if !json.Valid(sc.Bytes()) {
			t.Fatalf("line %q is not valid JSON", sc.Text())
		}
	}
}

func TestParseFlagsErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-users", "0"}, "-users 0: need at least 1 user"},
		{[]string{"-merchants", "-1"}, "-merchants -1: need at least 1 merchant"},
		{[]string{"-n", "-2"}, "-n -2: must be 0 (no limit) or more"},
		{[]string{"-rate", "-5"}, "-rate -5: must be 0 (no limit) or more"},
		{[]string{"extra"}, `unexpected argument "extra" (all options are flags, see -h)`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, err := parseFlags(tt.args, io.Discard)
			if err == nil || err.Error() != tt.want {
				t.Errorf("parseFlags(%q) error = %v, want %q", tt.args, err, tt.want)
			}
		})
	}
	if _, err := parseFlags([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("parseFlags(-h) error = %v, want flag.ErrHelp", err)
	}
}
