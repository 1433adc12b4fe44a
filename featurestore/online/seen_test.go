package online

import (
	"fmt"
	"testing"
	"time"
)

func TestSeenFilterHasEveryIDAdded(t *testing.T) {
	f := newSeenFilter(time.Hour)
	const n = 3 * firstFilterIDs // three filters
	for i := range n {
		f.add("ns", fmt.Sprintf("id-%d", i))
	}
	g := f.ns["ns"].cur
	if len(g.filters) != 2 {
		t.Errorf("%d ids in %d filters, want 2 (65,536 then 131,072)", n, len(g.filters))
	}
	for i := range n {
		if !g.has(hashOf(fmt.Sprintf("id-%d", i))) {
			t.Fatalf("id-%d added but not held", i)
		}
	}
	falses := 0
	for i := range 10_000 {
		if g.has(hashOf(fmt.Sprintf("other-%d", i))) {
			falses++
		}
	}
	if falses > 300 {
		t.Errorf("%d of 10,000 ids never added count as held, want about 1%%", falses)
	}
}

func TestSeenFilterGenerations(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := newSeenFilter(time.Hour)
	f.now = func() time.Time { return now }
	has := func(id string) bool {
		n := f.namespace("ns")
		h := hashOf(id)
		return n.cur.has(h) || n.prev != nil && n.prev.has(h)
	}
	t0 := now
	f.add("ns", "early")
	now = t0.Add(59 * time.Minute)
	f.add("ns", "late")
	// Each is held for at least one horizon after it was added, across
	// the rotation at t0 + 1h.
	for _, tt := range []struct {
		at   time.Duration
		want []string
	}{
		{59*time.Minute + 59*time.Second, []string{"early", "late"}},
		{60 * time.Minute, []string{"late"}},
		{118 * time.Minute, []string{"late"}},
	} {
		now = t0.Add(tt.at)
		for _, id := range tt.want {
			if !has(id) {
				t.Errorf("at t0+%v: %s forgotten within its horizon", tt.at, id)
			}
		}
	}
	// Two rotations on, both are gone: memory does not grow for ever.
	now = t0.Add(121 * time.Minute)
	if has("early") || has("late") {
		t.Error("ids older than two horizons are still held")
	}
}

func TestSeenFilterBounded(t *testing.T) {
	f := newSeenFilter(time.Hour)
	f.maxBytes = 100 << 10 // the first filter fits, the second does not
	for i := range firstFilterIDs + 1 {
		f.add("ns", fmt.Sprintf("id-%d", i))
	}
	g := f.ns["ns"].cur
	if !g.full || !g.has(hashOf("never added")) {
		t.Errorf("a generation past its bound must answer maybe for every id (full %v)", g.full)
	}
}

// TestSeenAcrossReopen marks ids seen, reopens the store and requires its
// new filter to know them, and ids a changelog brings to a store whose
// filter is loaded to be seen too.
func TestSeenAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := s.NewBatch()
	for _, id := range []string{"a", "b"} {
		if err := b.MarkSeen("view.v.1", id); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	seen := func(ns, id string) bool {
		t.Helper()
		b := s.NewBatch()
		defer b.Discard()
		ok, err := b.Seen(ns, id)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	for id, want := range map[string]bool{"a": true, "b": true, "c": false} {
		if got := seen("view.v.1", id); got != want {
			t.Errorf("Seen(%s) = %v after reopening, want %v", id, got, want)
		}
	}
	if seen("view.v.2", "a") {
		t.Error("an id seen under one namespace counts under another")
	}
	c := s.SeenChange("v", "view.v.1", "d", 0)
	b = s.NewBatch()
	if err := b.Apply(c.Key, c.Value, c.ExpiresAt); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if !seen("view.v.1", "d") {
		t.Error("an id applied from a changelog is not seen")
	}
}

func TestSeenFilterDropsUnusedNamespaces(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := newSeenFilter(time.Hour)
	f.now = func() time.Time { return now }
	f.add("view.v.1", "a")
	f.add("view.v.2", "b")
	// Only version 2 is used from now on; its rotation, an hour on, drops
	// version 1's filters once they have gone unused for over an hour.
	now = now.Add(90 * time.Minute)
	f.add("view.v.2", "c")
	if _, ok := f.ns["view.v.1"]; ok {
		t.Error("the filters of a namespace unused for 90 minutes are kept")
	}
	if n := f.ns["view.v.2"]; n == nil || !n.prev.has(hashOf("b")) || !n.cur.has(hashOf("c")) {
		t.Error("the namespace in use lost its ids")
	}
}
