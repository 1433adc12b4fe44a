package stream_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/featurestore/online"
	"github.com/sluicehq/sluice/stream"
	"github.com/sluicehq/sluice/testkit"
)

// regionRepo is merchantRepo with a region on every event and an entity
// for it.
var regionRepo = strings.Replace(merchantRepo, "  - {name: n, type: int64}", "  - {name: region_id, type: string}\n  - {name: n, type: int64}", 1) + `---
kind: entity
name: region
key: region_id
`

// TestRepartitionedViewChangingItsEntity updates a repartitioned view from
// merchant to region keys while two workers share the partitions. The
// repartition topic still holds the first version's copies, keyed by
// merchant and so on other partitions than their region's: the second
// version must apply only its own copies, on the worker that owns each
// region, or a region's events would be applied once on each worker and
// its state split between them. The workers' marks make version 2 ready
// across the fleet.
func TestRepartitionedViewChangingItsEntity(t *testing.T) {
	h := newHarness(t, regionRepo)
	var stores [2]*online.Store
	for i := range stores {
		stores[i] = testkit.OnlineStore(t)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 3)
	running := 0
	run := func(job func(context.Context) error) {
		running++
		go func() { done <- job(ctx) }()
	}
	defer func() {
		cancel()
		for range running {
			if err := <-done; err != nil {
				t.Errorf("engine or replica: %v", err)
			}
		}
	}()
	var engines [2]*stream.Engine
	for i := range engines {
		engines[i] = stream.NewEngine(h.cluster, h.registry, stores[i], h.producer, stream.Options{})
		run(engines[i].Run)
	}
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	want := map[string]int64{}
	var recs []rec
	for i := range 60 {
		region := fmt.Sprintf("r%d", i%3)
		recs = append(recs, rec{fmt.Sprintf("u%02d", i%17), fmt.Sprintf("e%d", i),
			fmt.Sprintf(`{"user_id":"u%02d","merchant_id":"m%d","region_id":%q,"n":1,"ts":%d}`, i%17, i%11, region, ts+int64(i))})
		want[region]++
	}
	h.produce(t, recs...)
	// Both workers own partitions of the repartition topic: each holds
	// offsets there (consumed, or restored from the changelog).
	err := testkit.Eventually(t.Context(), 30*time.Second, func() error {
		for i, s := range stores {
			if offs, err := s.Offsets("repartition.merchant_clicks"); err != nil || len(offs) == 0 {
				return fmt.Errorf("worker %d holds no partition of the repartition topic (%v)", i, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	lags := func() {
		t.Helper()
		for _, e := range engines {
			waitLag(t, func(ctx context.Context) (int64, error) { return e.Lag(ctx, h.registry) })
		}
	}
	lags()

	h.apply(t, strings.Replace(regionRepo, "entity: merchant\nsource: clicks", "entity: region\nsource: clicks", 1))
	lags()
	repo := h.registry.Repo()
	if v := repo.Views["merchant_clicks"]; v.Entity != "region" {
		t.Fatalf("merchant_clicks is keyed by %s after the update, want region", v.Entity)
	}
	// The workers mark the stream re-keyed and the repartition topic
	// applied for version 2, each on the partitions it owns.
	err = testkit.Eventually(t.Context(), 20*time.Second, func() error {
		if !h.registry.Rerouted("merchant_clicks", 2) || !h.registry.Ready("merchant_clicks", 2) {
			return fmt.Errorf("version 2 rerouted %v, ready %v", h.registry.Rerouted("merchant_clicks", 2), h.registry.Ready("merchant_clicks", 2))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A serve replica builds its store from the changelogs both workers
	// wrote.
	replica := testkit.OnlineStore(t)
	rep := stream.NewReplica(h.cluster, h.registry, replica, h.producer, stream.ReplicaOptions{ID: "r1"})
	run(rep.Run)
	waitLag(t, func(ctx context.Context) (int64, error) { return rep.Lag(ctx, h.registry) })
	at := ts*1000 + 1_000_000
	for region, n := range want {
		if got := read(t, replica, repo, "merchant_clicks", region, at)[0].V; got != n {
			t.Errorf("region %s on the serve replica: total %v, want %d", region, got, n)
		}
		// A worker that gave a region's partition up may keep what it
		// had applied, but never more than the region's events.
		for i, s := range stores {
			if got, _ := read(t, s, repo, "merchant_clicks", region, at)[0].V.(int64); got > n {
				t.Errorf("region %s on worker %d: total %d, more than its %d events", region, i, got, n)
			}
		}
	}
}

// TestRepartitionedVersionServesOnceReady updates a view keyed by merchant
// over a stream keyed by user, keeping its entity: reads stay on version 1
// until the engine has marked version 2 re-keyed and applied on every
// partition, then switch to it, complete.
func TestRepartitionedVersionServesOnceReady(t *testing.T) {
	h := newHarness(t, merchantRepo)
	store := testkit.OnlineStore(t)
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	var recs []rec
	want := map[string]int64{}
	for i := range 30 {
		m := fmt.Sprintf("m%d", i%4)
		recs = append(recs, rec{fmt.Sprintf("u%02d", i), fmt.Sprintf("e%d", i),
			fmt.Sprintf(`{"user_id":"u%02d","merchant_id":%q,"n":%d,"ts":%d}`, i, m, i, ts+int64(i))})
		want[m] += int64(i)
	}
	h.produce(t, recs...)
	runEngine(t, h, store)()

	h.apply(t, strings.Replace(merchantRepo, "  - {name: last_n, field: n, agg: last}",
		"  - {name: last_n, field: n, agg: last}\n  - {name: biggest, field: n, agg: max}", 1))
	repo := h.registry.Repo()
	cur, err := featurestore.Compile(repo, "merchant_clicks")
	if err != nil || cur.View.Version != 2 {
		t.Fatalf("version after the update: %v (%v), want 2", cur.View.Version, err)
	}
	caughtUp := func() bool {
		t.Helper()
		up, err := stream.CaughtUp(repo, cur, store.Offsets, h.registry.Ready)
		if err != nil {
			t.Fatal(err)
		}
		return up
	}
	if caughtUp() {
		t.Fatal("version 2 counts as caught up before the engine applied it")
	}
	defer runEngine(t, h, store)()
	err = testkit.Eventually(t.Context(), 20*time.Second, func() error {
		if !caughtUp() {
			return fmt.Errorf("version 2 not caught up (rerouted %v, ready %v)",
				h.registry.Rerouted("merchant_clicks", 2), h.registry.Ready("merchant_clicks", 2))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	at := ts*1000 + 1_000_000
	for m, total := range want {
		if got := readVersion(t, store, cur, m, at)[0].V; got != total {
			t.Errorf("merchant %s in version 2 once caught up: total %v, want %d", m, got, total)
		}
	}
}
