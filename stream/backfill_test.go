package stream_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors/kafka"
	"github.com/sluicehq/sluice/featurestore/offline"
	"github.com/sluicehq/sluice/schemas"
	"github.com/sluicehq/sluice/stream"
	"github.com/sluicehq/sluice/testkit"
)

// TestBackfillFromHistory starts an engine whose view has consumed nothing
// over a history that holds the topic's first records and one event the
// topic lacks (as if its retention had dropped it): the view must take the
// history, then consume only the records after it.
func TestBackfillFromHistory(t *testing.T) {
	h := newHarness(t, repoYAML)
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	var first []*kgo.Record
	for _, c := range []rec{click("a", "e1", 1, ts), click("a", "e2", 2, ts+1), click("b", "e3", 4, ts+2)} {
		first = append(first, &kgo.Record{Topic: "clicks", Key: []byte(c.user), Value: []byte(c.value)})
	}
	if err := h.producer.ProduceSync(t.Context(), first...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// The history: the three records, and one more of a (n=100) at an
	// offset below the history's end.
	offsets := map[int32]int64{}
	var rows []offline.Row
	for i, r := range first {
		n := []int64{1, 2, 4}[i]
		user := string(r.Key)
		rows = append(rows, row(user, "e"+string(rune('1'+i)), n, ts+int64(i), r.Partition, r.Offset))
		offsets[r.Partition] = max(offsets[r.Partition], r.Offset+1)
	}
	rows = append(rows, row("a", "gone", 100, ts+5, first[0].Partition, first[0].Offset))
	calls := 0
	history := func(_ context.Context, name string, _ *schemas.Schema, fn func(*offline.Row) error) (map[int32]int64, error) {
		calls++
		if name != "clicks" {
			t.Errorf("history of stream %q, want clicks", name)
		}
		for i := range rows {
			if err := fn(&rows[i]); err != nil {
				return nil, err
			}
		}
		return offsets, nil
	}
	// Records after the history: consumed from the topic.
	h.produce(t, click("a", "e4", 8, ts+10), click("b", "e3", 4, ts+2)) // e3 again: a duplicate

	store := testkit.OnlineStore(t)
	restored := 0.0
	run := func() {
		reg := prometheus.NewRegistry()
		runEngineWith(t, h, store, stream.Options{History: history, Registerer: reg})()
		restored += counter(t, reg, "sluice_stream_restored_entries_total", nil)
	}
	run()
	run() // a restart has offsets: no second backfill
	if calls != 1 {
		t.Errorf("history read %d times, want 1", calls)
	}
	// The backfill's entries were the changelog's first: the store holds
	// the changelog from its start, and reads nothing of it back.
	if restored != 0 {
		t.Errorf("%v changelog entries read back into the store that wrote them, want 0", restored)
	}
	repo := h.registry.Repo()
	at := ts*1000 + 1_000_000
	for _, tc := range []struct {
		user         string
		total, count int64
	}{{"a", 111, 4}, {"b", 4, 1}} {
		got := read(t, store, repo, "user_clicks", tc.user, at)
		if got[0].V != tc.total || got[1].V != tc.count {
			t.Errorf("user %s: total %v count %v, want %d and %d", tc.user, got[0].V, got[1].V, tc.total, tc.count)
		}
	}
}

func row(user, id string, n, tsMilli int64, partition int32, offset int64) offline.Row {
	return offline.Row{
		Values:  []any{user, n, tsMilli * 1000},
		Key:     user,
		EventID: id, EventTime: tsMilli * 1000, Arrival: tsMilli * 1000,
		Partition: partition, Offset: offset,
	}
}

// TestBackfillManyRows backfills more rows than one transaction can hold:
// the backfill commits in batches and takes every row.
func TestBackfillManyRows(t *testing.T) {
	wide := repoYAML + "\n"
	for i, w := range []string{"1h", "2h", "6h", "12h", "1d", "2d", "7d", "30d"} {
		wide += fmt.Sprintf("  - {name: sum_%d, field: n, agg: sum, window: %s}\n  - {name: mean_%d, field: n, agg: stddev, window: %s}\n  - {name: last_%d, field: n, agg: last_n, n: 5, window: %s}\n", i, w, i, w, i, w)
	}
	h := newHarness(t, wide)
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	const n = 30_000
	rows := make([]offline.Row, n)
	for i := range rows {
		rows[i] = row(fmt.Sprintf("u%05d", i), fmt.Sprintf("e%d", i), 1, ts+int64(i), 0, int64(i))
	}
	history := func(_ context.Context, _ string, _ *schemas.Schema, fn func(*offline.Row) error) (map[int32]int64, error) {
		for i := range rows {
			if err := fn(&rows[i]); err != nil {
				return nil, err
			}
		}
		return map[int32]int64{0: n}, nil
	}
	store := testkit.OnlineStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	eng := stream.NewEngine(h.cluster, h.registry, store, h.producer, stream.Options{History: history})
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	defer func() { cancel(); <-done }()
	err := testkit.Eventually(t.Context(), 60*time.Second, func() error {
		offs, err := store.Offsets("view.user_clicks.1")
		if err == nil && offs[0] != n {
			err = fmt.Errorf("offsets %v", offs)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	repo := h.registry.Repo()
	for _, u := range []string{"u00000", "u12345", "u29999"} {
		if got := read(t, store, repo, "user_clicks", u, ts*1000+n*1000+1); got[1].V != int64(1) {
			t.Errorf("%s: count %v, want 1", u, got[1].V)
		}
	}
}

// TestAnotherWorkersBackfillLeavesHeldStateAlone appends to the changelog
// what another worker's backfill of the same history writes, behind a
// worker's own entries for events after the history; the worker, back on
// its partitions, must keep its state rather than take the history's
// older values and offsets (and then skip the later events as seen).
func TestAnotherWorkersBackfillLeavesHeldStateAlone(t *testing.T) {
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	h := newHarness(t, repoYAML)
	var past, later []rec
	for i := range 12 {
		past = append(past, click(fmt.Sprintf("u%d", i%6), fmt.Sprintf("h%d", i), 1, ts+int64(i)))
		later = append(later, click(fmt.Sprintf("u%d", i%6), fmt.Sprintf("l%d", i), 100, ts+int64(20+i)))
	}
	h.produce(t, past...)
	rows, offsets := historyOf(t, h)
	history := func(_ context.Context, _ string, _ *schemas.Schema, fn func(*offline.Row) error) (map[int32]int64, error) {
		for i := range rows {
			if err := fn(&rows[i]); err != nil {
				return nil, err
			}
		}
		return offsets, nil
	}
	h.produce(t, later...)
	store := testkit.OnlineStore(t)
	runEngineWith(t, h, store, stream.Options{History: history})()

	// The other worker's backfill, on a broker of its own.
	other := newHarness(t, repoYAML)
	otherStore := testkit.OnlineStore(t)
	stop := runEngineWith(t, other, otherStore, stream.Options{History: history})
	err := testkit.Eventually(t.Context(), 20*time.Second, func() error {
		offs, err := otherStore.Offsets("view.user_clicks.1")
		if err == nil && len(offs) == 0 {
			err = fmt.Errorf("the other worker has not backfilled yet")
		}
		return err
	})
	stop()
	if err != nil {
		t.Fatal(err)
	}
	var foreign []*kgo.Record
	for _, r := range consumeAll(t, other, kafka.ChangelogTopic("user_clicks")) {
		foreign = append(foreign, &kgo.Record{Topic: r.Topic, Partition: r.Partition, Key: r.Key, Value: r.Value, Headers: r.Headers})
	}
	if err := h.producer.ProduceSync(t.Context(), foreign...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	defer runEngineWith(t, h, store, stream.Options{History: history})()
	// The engine is caught up before it is assigned its partitions: wait
	// for the assignment to have looked at the changelog (positions at its
	// end) and for consumption to be back at the topic's end.
	logEnds, err := kafka.EndOffsets(t.Context(), h.producer, kafka.ChangelogTopic("user_clicks"))
	if err != nil {
		t.Fatal(err)
	}
	topicEnds, err := kafka.EndOffsets(t.Context(), h.producer, "clicks")
	if err != nil {
		t.Fatal(err)
	}
	err = testkit.Eventually(t.Context(), 20*time.Second, func() error {
		at, err := store.ChangelogPositions("user_clicks")
		if err != nil {
			return err
		}
		offs, err := store.Offsets("view.user_clicks.1")
		if err != nil {
			return err
		}
		for _, r := range foreign {
			if at[r.Partition] < logEnds[kafka.ChangelogTopic("user_clicks")][r.Partition] {
				return fmt.Errorf("position of partition %d at %d", r.Partition, at[r.Partition])
			}
			if offs[r.Partition] < topicEnds["clicks"][r.Partition] {
				return fmt.Errorf("partition %d consumed up to %d", r.Partition, offs[r.Partition])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	repo := h.registry.Repo()
	for u := range 6 {
		got := read(t, store, repo, "user_clicks", fmt.Sprintf("u%d", u), ts*1000+time.Hour.Microseconds())
		if got[0].V != int64(202) || got[1].V != int64(4) {
			t.Errorf("u%d after the other backfill: total %v count %v, want 202 and 4", u, got[0].V, got[1].V)
		}
	}
}

// historyOf reads a harness's clicks topic back as offline history rows,
// with the offsets they cover.
func historyOf(t *testing.T, h *harness) ([]offline.Row, map[int32]int64) {
	t.Helper()
	var rows []offline.Row
	offsets := map[int32]int64{}
	for _, r := range consumeAll(t, h, "clicks") {
		var ev struct {
			User string `json:"user_id"`
			N    int64  `json:"n"`
			TS   int64  `json:"ts"`
		}
		if err := json.Unmarshal(r.Value, &ev); err != nil {
			t.Fatal(err)
		}
		id := ""
		for _, hd := range r.Headers {
			if hd.Key == kafka.HeaderEventID {
				id = string(hd.Value)
			}
		}
		rows = append(rows, row(ev.User, id, ev.N, ev.TS, r.Partition, r.Offset))
		offsets[r.Partition] = max(offsets[r.Partition], r.Offset+1)
	}
	return rows, offsets
}
