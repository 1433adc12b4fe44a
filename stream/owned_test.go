package stream

import (
	"testing"

	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/testkit"
)

// TestCaughtUpCountsOwnedPartitions builds a store that holds the job's
// offsets of two partitions and a new version's of one, as a worker's store
// does after a rebalance took the other partition away.
func TestCaughtUpCountsOwnedPartitions(t *testing.T) {
	repo, err := featurestore.Parse(map[string][]byte{"repo.yaml": []byte(`
kind: entity
name: user
key: user_id
---
kind: stream
name: clicks
entity: user
timestamp: ts
schema:
  - {name: user_id, type: string}
  - {name: ts, type: timestamp}
---
kind: feature_view
name: user_clicks
entity: user
source: clicks
features:
  - {name: events, agg: count}
`)})
	if err != nil {
		t.Fatal(err)
	}
	cv, err := featurestore.Compile(repo, "user_clicks")
	if err != nil {
		t.Fatal(err)
	}
	store := testkit.OnlineStore(t)
	b := store.NewBatch()
	for _, o := range []struct {
		name string
		p    int32
		next int64
	}{{"clicks", 0, 10}, {"clicks", 1, 10}, {viewKey(cv), 0, 10}} {
		if err := b.SetOffset(o.name, o.p, o.next); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	e := &Engine{store: store}
	check := func(what string, want bool) {
		t.Helper()
		if got, err := e.CaughtUp(repo, cv); err != nil || got != want {
			t.Errorf("%s: caught up %v (%v), want %v", what, got, err, want)
		}
	}
	check("before any assignment, every partition counts", false)
	e.owned.assign(map[string][]int32{"clicks": {0}})
	check("owning partition 0", true)
	e.owned.assign(map[string][]int32{"clicks": {1}})
	check("owning both", false)
	e.owned.revoke(map[string][]int32{"clicks": {1}})
	check("partition 1 revoked", true)
	if up, _ := CaughtUp(repo, cv, store.Offsets, nil); up {
		t.Error("CaughtUp over the whole store counts partition 1 caught up")
	}
	e.owned.revoke(nil)
	check("owning none again", false)
}
