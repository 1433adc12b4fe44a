package stream_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/connectors/kafka"
	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/featurestore/online"
	"github.com/sluicehq/sluice/featurestore/window"
	"github.com/sluicehq/sluice/serve"
	"github.com/sluicehq/sluice/stream"
	"github.com/sluicehq/sluice/testkit"
)

// TestPreviousVersionServesUntilTheNewOneCatchesUp applies a second
// version of a view to a node that has consumed events: until the new
// version has applied them all, reads come from the previous version; once
// it has, from the new one. The previous version is not applied any more:
// while the new one replays, the records after it wait anyway.
func TestPreviousVersionServesUntilTheNewOneCatchesUp(t *testing.T) {
	h := newHarness(t, repoYAML)
	store := testkit.OnlineStore(t)
	ts := time.Now().Add(-time.Minute).UnixMilli()
	h.produce(t, click("u1", "a", 1, ts), click("u1", "b", 2, ts+1), click("u2", "c", 5, ts+2))
	runEngine(t, h, store)()

	h.apply(t, strings.Replace(repoYAML, "  - {name: events, agg: count}",
		"  - {name: events, agg: count}\n  - {name: biggest, field: n, agg: max}", 1))
	repo := h.registry.Repo()
	cur, err := featurestore.Compile(repo, "user_clicks")
	if err != nil {
		t.Fatal(err)
	}
	prev, err := featurestore.CompilePrevious(repo, "user_clicks")
	if err != nil || prev == nil || prev.View.Version != 1 || cur.View.Version != 2 {
		t.Fatalf("versions: current %d, previous %+v (%v); want 2 and 1", cur.View.Version, prev, err)
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
		t.Fatal("version 2 counts as caught up before it applied anything")
	}
	mux := http.NewServeMux()
	serve.New(h.registry, store, serve.Options{CaughtUp: func(r *featurestore.Repo, cv *featurestore.CompiledView) (bool, error) {
		return stream.CaughtUp(r, cv, store.Offsets, h.registry.Ready)
	}}).Register(mux)
	// Version 2 holds nothing yet: the total comes from version 1, the new
	// feature from version 2 as far as it has got.
	if got := serveU1(t, mux); got != "3 NOT_FOUND" {
		t.Errorf("served while version 2 builds: %s, want version 1's total 3 and version 2's NOT_FOUND", got)
	}

	h.produce(t, click("u1", "d", 4, ts+3))
	runEngine(t, h, store)()
	total := func(cv *featurestore.CompiledView) any {
		t.Helper()
		return readVersion(t, store, cv, "u1", time.Now().UnixMicro())[0].V
	}
	if !caughtUp() {
		t.Fatal("version 2 has not caught up after the engine applied every record")
	}
	if got := total(cur); got != int64(7) {
		t.Errorf("version 2 total %v, want 7", got)
	}
	if got := total(prev); got != int64(3) {
		t.Errorf("version 1 total %v, want 3: only the current version is applied", got)
	}
	// Serving checks a version that is catching up again every 100 ms.
	err = testkit.Eventually(t.Context(), 5*time.Second, func() error {
		if got := serveU1(t, mux); got != "7 4" {
			return fmt.Errorf("served after version 2 caught up: %s, want 7 4", got)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// serveU1 reads user_clicks' total and biggest for u1 through the serving
// API and renders them as "total biggest", a missing value as its status.
func serveU1(t *testing.T, mux *http.ServeMux) string {
	t.Helper()
	body := `{"features":["user_clicks:total","user_clicks:biggest"],"entities":{"user_id":["u1"]}}`
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/get-online-features", strings.NewReader(body)))
	if rec.Code != http.StatusOK {
		t.Fatalf("get-online-features: %d %s", rec.Code, rec.Body)
	}
	var resp serve.Response
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	var parts []string
	for i, name := range resp.Metadata.FeatureNames {
		col := resp.Results[i]
		switch {
		case name == "user_id":
			continue
		case col.Values[0] == nil:
			parts = append(parts, col.Statuses[0])
		default:
			parts = append(parts, fmt.Sprint(col.Values[0]))
		}
	}
	return strings.Join(parts, " ")
}

// readVersion evaluates every feature of a compiled view version for one
// user at a time.
func readVersion(t *testing.T, store *online.Store, cv *featurestore.CompiledView, user string, at int64) []window.Value {
	t.Helper()
	out := make([]window.Value, len(cv.Specs))
	err := store.ReadState(cv.View.Name, cv.View.Version, []string{user}, cv.Layout, func(_ int, st *window.State, raw window.RawFunc) error {
		cv.Layout.Eval(at, st, raw, out)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFleetWorkersJudgeTheirOwnPartitions runs two workers in one group.
// The first consumed every partition before the second joined, so its
// store holds offsets of partitions it no longer owns: its lag and its
// view versions' catch-up must count its own partitions only (without,
// its lag never reaches 0). TestCaughtUpCountsOwnedPartitions pins the
// catch-up rule on a store built to hold such offsets.
func TestFleetWorkersJudgeTheirOwnPartitions(t *testing.T) {
	h := newHarness(t, repoYAML)
	var stores [2]*online.Store
	for i := range stores {
		s := testkit.OnlineStore(t)
		stores[i] = s
	}
	ts := time.Now().Add(-time.Minute).UnixMilli()
	users := func(round int) []rec {
		var out []rec
		for u := range 40 {
			out = append(out, click(fmt.Sprintf("u%02d", u), fmt.Sprintf("r%d-%d", round, u), 1, ts+int64(round)))
		}
		return out
	}
	h.produce(t, users(0)...)
	ctx, cancel := context.WithCancel(t.Context())
	var engines [2]*stream.Engine
	done := make(chan error, 2)
	start := func(i int) {
		engines[i] = stream.NewEngine(h.cluster, h.registry, stores[i], h.producer, stream.Options{})
		go func() { done <- engines[i].Run(ctx) }()
	}
	defer func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				t.Errorf("engine: %v", err)
			}
		}
	}()
	lags := func() {
		t.Helper()
		for _, e := range engines {
			waitLag(t, func(ctx context.Context) (int64, error) { return e.Lag(ctx, h.registry) })
		}
	}
	start(0)
	waitLag(t, func(ctx context.Context) (int64, error) { return engines[0].Lag(ctx, h.registry) })
	start(1)
	err := testkit.Eventually(t.Context(), 30*time.Second, func() error {
		if offs, err := stores[1].Offsets("clicks"); err != nil || len(offs) == 0 {
			return fmt.Errorf("the second worker owns no partition yet (%v)", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	lags()

	h.apply(t, strings.Replace(repoYAML, "  - {name: events, agg: count}",
		"  - {name: events, agg: count}\n  - {name: biggest, field: n, agg: max}", 1))
	h.produce(t, users(1)...)
	lags()
	repo := h.registry.Repo()
	cur, err := featurestore.Compile(repo, "user_clicks")
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range engines {
		up, err := e.CaughtUp(repo, cur)
		if err != nil || !up {
			t.Errorf("worker %d: version 2 caught up = %v (%v) after both workers applied every record, want true", i, up, err)
		}
	}
}

// TestUpdateKeepsServingTheVersionThatIsReady checks the marks the engine
// leaves in the registry: a version caught up on every partition is ready,
// and an update applied while the current version is not (here, through
// the registry alone, as an ingest-only node would) keeps the ready
// version as the one to serve rather than the half-built one.
func TestUpdateKeepsServingTheVersionThatIsReady(t *testing.T) {
	h := newHarness(t, repoYAML)
	store := testkit.OnlineStore(t)
	ts := time.Now().Add(-time.Minute).UnixMilli()
	h.produce(t, click("u1", "a", 1, ts), click("u2", "b", 2, ts+1))
	runEngine(t, h, store)()
	if !h.registry.Ready("user_clicks", 1) {
		t.Fatal("version 1 is not marked ready after the engine caught up")
	}
	version := func(n int) string {
		return strings.Replace(repoYAML, "  - {name: events, agg: count}",
			fmt.Sprintf("  - {name: events, agg: count}\n  - {name: f%d, field: n, agg: max}", n), 1)
	}
	previous := func() int {
		t.Helper()
		prev, err := featurestore.CompilePrevious(h.registry.Repo(), "user_clicks")
		if err != nil || prev == nil {
			t.Fatalf("previous version: %+v, %v", prev, err)
		}
		return prev.View.Version
	}
	h.apply(t, version(2))
	if h.registry.Ready("user_clicks", 2) {
		t.Fatal("version 2 is marked ready before any engine applied it")
	}
	h.apply(t, version(3))
	if got := previous(); got != 1 {
		t.Errorf("update over a half-built version 2: previous version %d, want 1, the ready one", got)
	}

	runEngine(t, h, store)()
	if !h.registry.Ready("user_clicks", 3) {
		t.Fatal("version 3 is not marked ready after the engine caught up")
	}
	h.apply(t, version(4))
	if got := previous(); got != 3 {
		t.Errorf("update over a ready version 3: previous version %d, want 3", got)
	}
	if h.registry.Marked(featurestore.ReadyMark{View: "user_clicks", Version: 1, Partition: 0}) {
		t.Error("version 1, neither served nor building, keeps its marks")
	}
}

// TestQuietWorkerMarksItsPartitions runs a worker over a topic without a
// record: it never handles a poll, yet marks every partition, so the view
// version is ready.
func TestQuietWorkerMarksItsPartitions(t *testing.T) {
	h := newHarness(t, repoYAML)
	store := testkit.OnlineStore(t)
	stop := runEngine(t, h, store)
	defer stop()
	err := testkit.Eventually(t.Context(), 20*time.Second, func() error {
		if h.registry.Ready("user_clicks", 1) {
			return nil
		}
		var marked []int32
		for p := range int32(kafka.DefaultPartitions) {
			if h.registry.Marked(featurestore.ReadyMark{View: "user_clicks", Version: 1, Partition: p}) {
				marked = append(marked, p)
			}
		}
		return fmt.Errorf("version 1 marked on partitions %v only", marked)
	})
	if err != nil {
		t.Fatal(err)
	}
}
