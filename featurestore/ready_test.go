package featurestore_test

import (
	"testing"

	"github.com/sluicehq/sluice/featurestore"
)

// TestReadyMarksLiveInTheLog marks partitions through one registry and
// reads them back through another opened on the same log, as another node
// would: a version is ready once every partition is marked, and an apply
// that leaves a version neither current nor previous removes its marks.
func TestReadyMarksLiveInTheLog(t *testing.T) {
	log := &sliceLog{}
	reg, err := featurestore.OpenRegistry(t.Context(), log, nil)
	if err != nil {
		t.Fatal(err)
	}
	apply := func(yaml string) { t.Helper(); applyYAML(t, reg, yaml) }
	apply(oneView)
	mark := func(p int32) featurestore.ReadyMark {
		return featurestore.ReadyMark{View: "v", Version: 1, Partition: p, Partitions: 2}
	}
	if err := reg.MarkReady(t.Context(), mark(0)); err != nil {
		t.Fatal(err)
	}
	if reg.Ready("v", 1) {
		t.Error("ready with one of two partitions marked")
	}
	if err := reg.MarkReady(t.Context(), mark(1)); err != nil {
		t.Fatal(err)
	}
	other, err := featurestore.OpenRegistry(t.Context(), log, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !other.Ready("v", 1) || other.Ready("v", 2) {
		t.Errorf("read back: version 1 ready %v, version 2 ready %v; want true, false", other.Ready("v", 1), other.Ready("v", 2))
	}

	// Version 2 makes 1 the previous version. Version 3, applied while 2
	// has no marks, keeps 1; once 3 is marked, version 4 makes 3 the
	// previous one, and 1's marks go.
	apply(oneView + "  - {name: a, agg: count, window: 1h}\n")
	apply(oneView + "  - {name: b, agg: count, window: 2h}\n")
	previous := func() int { return reg.Repo().Previous["v"].Version }
	if got := previous(); got != 1 {
		t.Fatalf("previous after version 3 over an unmarked 2: %d, want 1", got)
	}
	three := featurestore.ReadyMark{View: "v", Version: 3, Partition: 0, Partitions: 1}
	if err := reg.MarkReady(t.Context(), three); err != nil {
		t.Fatal(err)
	}
	apply(oneView + "  - {name: c, agg: count, window: 3h}\n")
	if got := previous(); got != 3 {
		t.Fatalf("previous after version 4 over a ready 3: %d, want 3", got)
	}
	reopened, err := featurestore.OpenRegistry(t.Context(), log, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*featurestore.Registry{reg, reopened} {
		if r.Marked(featurestore.ReadyMark{View: "v", Version: 1, Partition: 0}) || r.Marked(featurestore.ReadyMark{View: "v", Version: 1, Partition: 1}) {
			t.Error("version 1's marks outlive it")
		}
	}
}

// TestUpdateWithoutMarks applies updates to a registry whose log has no
// marks, as one written before marks existed: each update makes the
// current version the previous one.
func TestUpdateWithoutMarks(t *testing.T) {
	reg, err := featurestore.OpenRegistry(t.Context(), &sliceLog{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, extra := range []string{"", "  - {name: a, agg: count, window: 1h}\n", "  - {name: b, agg: count, window: 2h}\n"} {
		repo, err := featurestore.Parse(map[string][]byte{"r.yaml": []byte(oneView + extra)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Apply(t.Context(), repo, false); err != nil {
			t.Fatal(err)
		}
		if prev := reg.Repo().Previous["v"]; i > 0 && (prev == nil || prev.Version != i) {
			t.Errorf("version %d: previous %+v, want version %d", i+1, prev, i)
		}
	}
}

// TestReadyMarkCounts checks the partition count marks carry: a later mark
// that counts fewer partitions (a metadata answer that lacked some) does not
// shrink it.
func TestReadyMarkCounts(t *testing.T) {
	reg, err := featurestore.OpenRegistry(t.Context(), &sliceLog{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	marks := []featurestore.ReadyMark{
		{View: "v", Version: 1, Partition: 0, Partitions: 3},
		{View: "v", Version: 1, Partition: 1, Partitions: 2},
		{View: "v", Version: 1, Partition: 2, Partitions: 3},
	}
	for i, m := range marks {
		if err := reg.MarkReady(t.Context(), m); err != nil {
			t.Fatal(err)
		}
		if got, want := reg.Ready("v", 1), i == 2; got != want {
			t.Errorf("after %d marks: ready %v, want %v", i+1, got, want)
		}
	}
}

// TestRegistrySkipsUnknownKinds opens a log holding a record of a kind a
// newer build writes: the definitions still load.
func TestRegistrySkipsUnknownKinds(t *testing.T) {
	log := &sliceLog{}
	reg, err := featurestore.OpenRegistry(t.Context(), log, nil)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := featurestore.Parse(map[string][]byte{"r.yaml": []byte(oneView)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Apply(t.Context(), repo, false); err != nil {
		t.Fatal(err)
	}
	if err := log.Append(t.Context(), []featurestore.Record{{Key: "future_kind/x", Value: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	reopened, err := featurestore.OpenRegistry(t.Context(), log, nil)
	if err != nil {
		t.Fatalf("open a log with a record of an unknown kind: %v", err)
	}
	if reopened.Repo().Views["v"] == nil {
		t.Error("view v missing after reopening")
	}
}

// TestReroutedMarksAreTheirOwnKind marks a view version's stream
// partitions re-keyed: they make the version rerouted, not ready, read back
// through a second registry on the same log, and go with the version.
func TestReroutedMarksAreTheirOwnKind(t *testing.T) {
	log := &sliceLog{}
	reg, err := featurestore.OpenRegistry(t.Context(), log, nil)
	if err != nil {
		t.Fatal(err)
	}
	apply := func(yaml string) { t.Helper(); applyYAML(t, reg, yaml) }
	apply(oneView)
	rerouted := func(p int32) featurestore.ReadyMark {
		return featurestore.ReadyMark{View: "v", Version: 1, Partition: p, Partitions: 2, Rerouted: true}
	}
	if err := reg.MarkReady(t.Context(), rerouted(0), rerouted(1)); err != nil {
		t.Fatal(err)
	}
	other, err := featurestore.OpenRegistry(t.Context(), log, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]*featurestore.Registry{"writer": reg, "reader": other} {
		ready0 := featurestore.ReadyMark{View: "v", Version: 1, Partition: 0}
		if !r.Rerouted("v", 1) || r.Ready("v", 1) || r.Marked(ready0) || !r.Marked(rerouted(0)) {
			t.Errorf("%s: rerouted %v, ready %v, partition 0 marked ready %v and rerouted %v; want true, false, false, true",
				name, r.Rerouted("v", 1), r.Ready("v", 1), r.Marked(ready0), r.Marked(rerouted(0)))
		}
	}
	// Versions 2 and 3 leave version 1 neither current nor previous.
	apply(oneView + "  - {name: a, agg: count, window: 1h}\n")
	apply(oneView + "  - {name: b, agg: count, window: 2h}\n")
	reopened, err := featurestore.OpenRegistry(t.Context(), log, nil)
	if err != nil {
		t.Fatal(err)
	}
	if reopened.Marked(rerouted(0)) || reopened.Marked(rerouted(1)) || reg.Rerouted("v", 1) {
		t.Error("version 1's rerouted marks outlive it")
	}
}

// TestViewNamedLikeAMarkKind marks a view whose name is a mark kind: the
// record key holds the kind once, then the name.
func TestViewNamedLikeAMarkKind(t *testing.T) {
	log := &sliceLog{}
	reg, err := featurestore.OpenRegistry(t.Context(), log, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := featurestore.ReadyMark{View: featurestore.KindRerouted, Version: 1, Partition: 0, Partitions: 1}
	if err := reg.MarkReady(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	reopened, err := featurestore.OpenRegistry(t.Context(), log, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reopened.Ready(featurestore.KindRerouted, 1) || reopened.Rerouted(featurestore.KindRerouted, 1) {
		t.Errorf("view %q read back: ready %v, rerouted %v; want true, false", m.View,
			reopened.Ready(featurestore.KindRerouted, 1), reopened.Rerouted(featurestore.KindRerouted, 1))
	}
}

// applyYAML applies a repository written as YAML through reg.
func applyYAML(t *testing.T, reg *featurestore.Registry, yaml string) {
	t.Helper()
	repo, err := featurestore.Parse(map[string][]byte{"r.yaml": []byte(yaml)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Apply(t.Context(), repo, false); err != nil {
		t.Fatal(err)
	}
}
