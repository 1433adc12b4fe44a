package stream_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/sluicehq/sluice/connectors/kafka"
	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/featurestore/offline"
	"github.com/sluicehq/sluice/featurestore/online"
	"github.com/sluicehq/sluice/featurestore/window"
	"github.com/sluicehq/sluice/serve"
	"github.com/sluicehq/sluice/stream"
	"github.com/sluicehq/sluice/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const repoYAML = `
kind: entity
name: user
key: user_id
---
kind: stream
name: clicks
entity: user
timestamp: ts
timestamp_unit: ms
schema:
  - {name: user_id, type: string}
  - {name: n, type: int64}
  - {name: ts, type: timestamp}
---
kind: feature_view
name: user_clicks
entity: user
source: clicks
filter: n >= 0
features:
  - {name: total, field: n, agg: sum}
  - {name: events, agg: count}
`

const extraView = `
---
kind: feature_view
name: user_clicks_late
entity: user
source: clicks
features:
  - {name: events, agg: count}
`

// harness is a broker, a registry and producer over it.
type harness struct {
	cluster  kafka.Cluster
	producer *kgo.Client
	registry *featurestore.Registry
}

func newHarness(t *testing.T, yaml string) *harness {
	t.Helper()
	cluster, producer, registry := stream.StartRegistry(t, yaml)
	return &harness{cluster: cluster, producer: producer, registry: registry}
}

func (h *harness) apply(t *testing.T, yaml string) {
	t.Helper()
	repo, err := featurestore.Parse(map[string][]byte{"repo.yaml": []byte(yaml)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.registry.Apply(t.Context(), repo, false); err != nil {
		t.Fatal(err)
	}
}

// produce writes records keyed by user; id, when set, goes in the header.
func (h *harness) produce(t *testing.T, recs ...rec) {
	t.Helper()
	var krs []*kgo.Record
	for _, r := range recs {
		kr := &kgo.Record{Topic: "clicks", Key: []byte(r.user), Value: []byte(r.value)}
		if r.id != "" {
			kr.Headers = []kgo.RecordHeader{{Key: kafka.HeaderEventID, Value: []byte(r.id)}}
		}
		krs = append(krs, kr)
	}
	if err := h.producer.ProduceSync(t.Context(), krs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

type rec struct{ user, id, value string }

func click(user, id string, n int, ts int64) rec {
	return rec{user, id, fmt.Sprintf(`{"user_id":%q,"n":%d,"ts":%d}`, user, n, ts)}
}

// runEngine starts an engine over store and waits until it has caught
// up; the returned func stops it.
func runEngine(t *testing.T, h *harness, store *online.Store) func() {
	t.Helper()
	return runEngineWith(t, h, store, stream.Options{})
}

// runEngineWith is runEngine with options.
func runEngineWith(t *testing.T, h *harness, store *online.Store, opts stream.Options) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	eng := stream.NewEngine(h.cluster, h.registry, store, h.producer, opts)
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	waitLag(t, func(ctx context.Context) (int64, error) { return eng.Lag(ctx, h.registry) })
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("engine: %v", err)
		}
	}
}

func waitLag(t *testing.T, lag func(context.Context) (int64, error)) {
	t.Helper()
	err := testkit.Eventually(t.Context(), 20*time.Second, func() error {
		n, err := lag(t.Context())
		if err == nil && n != 0 {
			err = fmt.Errorf("lag %d", n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// read evaluates a view's features for one user at t.
func read(t *testing.T, store *online.Store, repo *featurestore.Repo, view, user string, at int64) []window.Value {
	t.Helper()
	cv, err := featurestore.Compile(repo, view)
	if err != nil {
		t.Fatal(err)
	}
	return readVersion(t, store, cv, user, at)
}

func TestEngineAppliesOnceAcrossRestarts(t *testing.T) {
	h := newHarness(t, repoYAML)
	store := testkit.OnlineStore(t)
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	h.produce(t,
		click("a", "e1", 5, ts),
		click("a", "e1", 5, ts),                            // the same id again: ignored
		click("a", "", -3, ts+1),                           // filtered out by n >= 0
		rec{"a", "", `{"user_id":"a","n":"seven","ts":1}`}, // invalid: dead letter
		click("b", "", 2, ts+2),                            // no id: derived from partition and offset
	)
	stop := runEngine(t, h, store)
	stop()
	// A restarted engine resumes after what it committed, and holds the
	// changelog it wrote: it reads none of it back.
	h.produce(t, click("a", "e2", 7, ts+3), click("a", "e1", 5, ts))
	reg := prometheus.NewRegistry()
	stop = runEngineWith(t, h, store, stream.Options{Registerer: reg})
	defer stop()
	if got := counter(t, reg, "sluice_stream_restored_entries_total", nil); got != 0 {
		t.Errorf("restarted engine read %v changelog entries back, want 0", got)
	}

	at := ts*1000 + 10_000
	repo := h.registry.Repo()
	for _, tc := range []struct {
		user         string
		total, count int64
	}{{"a", 12, 2}, {"b", 2, 1}} {
		got := read(t, store, repo, "user_clicks", tc.user, at)
		if got[0].V != tc.total || got[1].V != tc.count {
			t.Errorf("user %s: total %v count %v, want %d and %d", tc.user, got[0].V, got[1].V, tc.total, tc.count)
		}
	}
	dead := consumeAll(t, h, kafka.DLQTopic("clicks"))
	if len(dead) != 1 || string(dead[0].Value) != `{"user_id":"a","n":"seven","ts":1}` {
		t.Fatalf("dead letters: %v", dead)
	}
}

func TestEnginePicksUpNewViews(t *testing.T) {
	h := newHarness(t, repoYAML)
	store := testkit.OnlineStore(t)
	stop := runEngine(t, h, store)
	defer stop()
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	// Two events, one re-sent, before the new view exists...
	h.produce(t, click("a", "x1", 1, ts), click("a", "x2", 1, ts+1), click("a", "x1", 1, ts))
	waitLag(t, func(ctx context.Context) (int64, error) { return runLag(ctx, h, store) })
	h.apply(t, repoYAML+extraView)
	// ...and two after: the new view is backfilled from the log, once each.
	h.produce(t, click("a", "x3", 1, ts+2), click("a", "x4", 1, ts+3), click("a", "x2", 1, ts+1))
	at := ts*1000 + 5000
	err := testkit.Eventually(t.Context(), 20*time.Second, func() error {
		got := read(t, store, h.registry.Repo(), "user_clicks_late", "a", at)
		if got[0].V != int64(4) {
			return fmt.Errorf("new view counts %v, want 4", got[0].V)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := read(t, store, h.registry.Repo(), "user_clicks", "a", at); got[1].V != int64(4) {
		t.Errorf("existing view counts %v, want 4", got[1].V)
	}
	// A changed view is a new version, built from the whole log too.
	h.apply(t, repoYAML+strings.Replace(extraView, "{name: events, agg: count}", "{name: events, agg: count}\n  - {name: total, field: n, agg: sum}", 1))
	repo := h.registry.Repo()
	if v := repo.Views["user_clicks_late"].Version; v != 2 {
		t.Fatalf("version %d, want 2", v)
	}
	err = testkit.Eventually(t.Context(), 20*time.Second, func() error {
		got := read(t, store, repo, "user_clicks_late", "a", at)
		if got[0].V != int64(4) || got[1].V != int64(4) {
			return fmt.Errorf("version 2: count %v, sum %v; want 4 and 4", got[0].V, got[1].V)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// runLag is the lag of an engine over the harness's registry and store.
func runLag(ctx context.Context, h *harness, store *online.Store) (int64, error) {
	return stream.NewEngine(h.cluster, h.registry, store, h.producer, stream.Options{}).Lag(ctx, h.registry)
}

func TestOfflineSinkWritesEachEventOnce(t *testing.T) {
	h := newHarness(t, repoYAML)
	dir := t.TempDir()
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	h.produce(t, click("a", "e1", 5, ts), click("a", "e1", 5, ts), click("b", "", 2, ts+1),
		rec{"a", "", `not json`})
	for range 2 { // the second run finds nothing new
		sink, err := offline.Open(dir, offline.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		job := stream.NewOfflineSink(h.cluster, h.registry, sink, h.producer, stream.SinkOptions{FlushInterval: 50 * time.Millisecond})
		done := make(chan error, 1)
		go func() { done <- job.Run(ctx) }()
		waitLag(t, func(ctx context.Context) (int64, error) { return job.Lag(ctx, h.registry) })
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if err := sink.Close(); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := offline.ReadStream(dir, "clicks")
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int{}
	for _, r := range rows {
		ids[r["_event_id"].(string)]++
	}
	if len(rows) != 2 || ids["e1"] != 1 {
		t.Fatalf("offline rows %d (ids %v), want 2 with e1 once", len(rows), ids)
	}
}

func consumeAll(t *testing.T, h *harness, topic string) []*kgo.Record {
	t.Helper()
	ends, err := kafka.EndOffsets(t.Context(), h.producer, topic)
	if err != nil {
		t.Fatal(err)
	}
	// Changelogs hold the markers of the transactions that wrote them, and
	// aborted transactions are skipped: a partition is read once a record
	// at or past its end arrived.
	cl, err := h.cluster.Client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	left := map[int32]int64{}
	for p, end := range ends[topic] {
		if end > 0 {
			left[p] = end
		}
	}
	var out []*kgo.Record
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for len(left) > 0 {
		if ctx.Err() != nil {
			t.Fatalf("%s not read to its end within 10s: partitions %v left", topic, left)
		}
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if end, ok := left[r.Partition]; ok && r.Offset+1 >= end {
				delete(left, r.Partition)
			}
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
		})
	}
	return out
}

// TestPoisonRecordsGoToTheDeadLetterTopic sends every kind of bad record
// between good ones: each lands in the DLQ with a reason naming the
// problem, and the good records around them are applied.
func TestPoisonRecordsGoToTheDeadLetterTopic(t *testing.T) {
	h := newHarness(t, repoYAML)
	store := testkit.OnlineStore(t)
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	big := strings.Repeat("x", 100<<10)
	poison := []struct{ value, reason string }{
		{`{"user_id":"a","n":"7","ts":1767225600000}`, `"n": expected int64`},
		{`{"n":7,"ts":1767225600000}`, `"user_id"`},
		{`{"user_id":"a","n":7,"ts":"0001-01-01T00:00:00Z"}`, "outside 1900..2200"},
		{`{"user_id":"a","n":7,"ts":"9999-01-01T00:00:00Z"}`, "outside 1900..2200"},
		{`{"user_id":"a","n":7}`, `"ts"`},
		{`{"user_id":"` + big + `","n":7,"ts":1767225600000}`, `"user_id"`},
		{`not json at all`, "invalid JSON"},
		{``, "invalid JSON"},
		{`[1,2,3]`, "expected a JSON object"},
	}
	recs := []rec{click("a", "g1", 1, ts)}
	for _, p := range poison {
		recs = append(recs, rec{"a", "", p.value})
	}
	recs = append(recs, click("a", "g2", 2, ts+1))
	h.produce(t, recs...)
	stop := runEngine(t, h, store)
	defer stop()

	got := read(t, store, h.registry.Repo(), "user_clicks", "a", ts*1000+10_000)
	if got[0].V != int64(3) || got[1].V != int64(2) {
		t.Errorf("good records: total %v count %v, want 3 and 2", got[0].V, got[1].V)
	}
	dead := consumeAll(t, h, kafka.DLQTopic("clicks"))
	if len(dead) != len(poison) {
		t.Fatalf("%d dead letters, want %d", len(dead), len(poison))
	}
	byValue := map[string]string{}
	for _, d := range dead {
		for _, hd := range d.Headers {
			if hd.Key == kafka.HeaderError {
				byValue[string(d.Value)] = string(hd.Value)
			}
		}
	}
	for _, p := range poison {
		reason, ok := byValue[p.value]
		if !ok {
			t.Errorf("no dead letter kept the bytes of %.60q", p.value)
			continue
		}
		if !strings.Contains(reason, p.reason) {
			t.Errorf("dead letter of %.60q says %q, want it to mention %q", p.value, reason, p.reason)
		}
	}
}

const merchantRepo = `
kind: entity
name: user
key: user_id
---
kind: entity
name: merchant
key: merchant_id
---
kind: stream
name: clicks
entity: user
timestamp: ts
timestamp_unit: ms
schema:
  - {name: user_id, type: string}
  - {name: merchant_id, type: string}
  - {name: n, type: int64}
  - {name: ts, type: timestamp}
---
kind: feature_view
name: merchant_clicks
entity: merchant
source: clicks
features:
  - {name: total, field: n, agg: sum}
  - {name: last_n, field: n, agg: last}
`

// TestRepartitionedView applies a view keyed by merchant over a stream
// keyed by user: events of one merchant come from users on different
// partitions, go through sluice.repartition.merchant_clicks, and are
// applied once each, also across a restart and a re-sent copy.
func TestRepartitionedView(t *testing.T) {
	h := newHarness(t, merchantRepo)
	store := testkit.OnlineStore(t)
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	ev := func(user, merchant, id string, n int, at int64) rec {
		return rec{user, id, fmt.Sprintf(`{"user_id":%q,"merchant_id":%q,"n":%d,"ts":%d}`, user, merchant, n, at)}
	}
	var recs []rec
	want := map[string]int64{}
	for i := range 40 {
		m := fmt.Sprintf("m%d", i%3)
		recs = append(recs, ev(fmt.Sprintf("u%02d", i), m, fmt.Sprintf("e%d", i), i, ts+int64(i)))
		want[m] += int64(i)
	}
	h.produce(t, recs[:20]...)
	stop := runEngine(t, h, store)
	stop()
	h.produce(t, recs[20:]...)
	// A copy of an event already re-keyed, as a crash before the commit
	// would write it again: dropped by its id.
	cp := &kgo.Record{Topic: kafka.RepartitionTopic("merchant_clicks"), Key: []byte("m0"), Value: []byte(recs[3].value),
		Headers: []kgo.RecordHeader{{Key: kafka.HeaderEventID, Value: []byte("e3")}}}
	if err := h.producer.ProduceSync(t.Context(), cp).FirstErr(); err != nil {
		t.Fatal(err)
	}
	stop = runEngine(t, h, store)
	defer stop()

	repo := h.registry.Repo()
	at := ts*1000 + 1_000_000
	for m, total := range want {
		got := read(t, store, repo, "merchant_clicks", m, at)
		if got[0].V != total {
			t.Errorf("merchant %s: total %v, want %d", m, got[0].V, total)
		}
	}
	// last follows the source order: m0's latest event is e39.
	if got := read(t, store, repo, "merchant_clicks", "m0", at); got[1].V != int64(39) {
		t.Errorf("m0 last = %v, want 39", got[1].V)
	}
	if n := len(consumeAll(t, h, kafka.RepartitionTopic("merchant_clicks"))); n != 41 {
		t.Errorf("repartition topic holds %d records, want 40 + 1 copy", n)
	}
}

// TestOfflineSinkCompactsClosedDays flushes one user's events of a closed
// day in several files, then lets the running job compact them into one.
func TestOfflineSinkCompactsClosedDays(t *testing.T) {
	h := newHarness(t, repoYAML)
	dir := t.TempDir()
	sink, err := offline.Open(dir, offline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	ctx, cancel := context.WithCancel(t.Context())
	job := stream.NewOfflineSink(h.cluster, h.registry, sink, h.producer, stream.SinkOptions{
		FlushInterval: 10 * time.Millisecond, CompactEvery: 200 * time.Millisecond,
	})
	done := make(chan error, 1)
	go func() { done <- job.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	ts := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC).UnixMilli()
	for round := range 4 { // each round is flushed into its own file
		h.produce(t, click("a", fmt.Sprintf("e%d", round), round, ts+int64(round)))
		waitLag(t, func(ctx context.Context) (int64, error) { return job.Lag(ctx, h.registry) })
	}
	err = testkit.Eventually(t.Context(), 20*time.Second, func() error {
		files, err := offline.Files(dir, "clicks")
		if err != nil {
			return err
		}
		if len(files) != 1 {
			return fmt.Errorf("%d files, want 1 after compaction", len(files))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := offline.ReadStream(dir, "clicks")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 {
		t.Fatalf("%d rows after compaction, want 4", len(rows))
	}
}

const recentView = `
---
kind: feature_view
name: user_recent
entity: user
source: clicks
allowed_lateness: 1s
features:
  - {name: n_2s, agg: count, window: 2s, hop: 1s}
`

// TestLateEventsAndRetention checks the online retention of a view with
// only windowed features (2s window, 1s hop, 1s lateness: 4s): an event that
// arrives later than that after its time is dropped and counted; one that
// arrives in time is applied, and expires from the store after two
// retentions.
func TestLateEventsAndRetention(t *testing.T) {
	h := newHarness(t, repoYAML+recentView)
	store := testkit.OnlineStore(t)
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(t.Context())
	eng := stream.NewEngine(h.cluster, h.registry, store, h.producer, stream.Options{Registerer: reg})
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	defer func() { cancel(); <-done }()

	now := time.Now()
	inTime, late := now.Add(-3*time.Second), now.Add(-time.Minute)
	h.produce(t, click("a", "ok", 1, inTime.UnixMilli()), click("a", "late", 1, late.UnixMilli()))
	waitLag(t, func(ctx context.Context) (int64, error) { return eng.Lag(ctx, h.registry) })

	repo := h.registry.Repo()
	count := func(at time.Time) any {
		return read(t, store, repo, "user_recent", "a", at.UnixMicro())[0].V
	}
	if got := count(inTime.Add(time.Millisecond)); got != int64(1) {
		t.Errorf("in-time event: count %v, want 1", got)
	}
	if got := count(late.Add(time.Millisecond)); got != int64(0) {
		t.Errorf("late event: count %v, want 0 (dropped online)", got)
	}
	// The lifetime view of the same stream takes the late event.
	if got := read(t, store, repo, "user_clicks", "a", now.UnixMicro())[1].V; got != int64(2) {
		t.Errorf("lifetime count %v, want 2", got)
	}
	if got := lateDropped(t, reg, "user_recent"); got != 1 {
		t.Errorf("sluice_stream_late_dropped_total{view=user_recent} = %v, want 1", got)
	}
	// Serving refuses reads further back than the view keeps state.
	mux := http.NewServeMux()
	serve.New(h.registry, store, serve.Options{}).Register(mux)
	body := fmt.Sprintf(`{"features":["user_recent:n_2s"],"entities":{"user_id":["a"]},"at":%q}`, late.UTC().Format(time.RFC3339Nano))
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/get-online-features", strings.NewReader(body)))
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "keeps state for 4s") {
		t.Errorf("read at %v: %d %s, want 400 naming the retention", late, rec.Code, rec.Body)
	}
	// Kept for two retentions (8s) after its event time, then gone.
	err := testkit.Eventually(t.Context(), 15*time.Second, func() error {
		if got := count(inTime.Add(time.Millisecond)); got != int64(0) {
			return fmt.Errorf("count %v after expiry, want 0", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(inTime) < 8*time.Second {
		t.Errorf("the event expired %v after its time, before its 8s", time.Since(inTime))
	}
}

// lateDropped reads sluice_stream_late_dropped_total of a view.
func lateDropped(t *testing.T, reg *prometheus.Registry, view string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "sluice_stream_late_dropped_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "view" && l.GetValue() == view {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no sluice_stream_late_dropped_total{view=%q}", view)
	return 0
}
