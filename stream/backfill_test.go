package stream_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/featurestore/offline"
	"github.com/sluicehq/sluice/featurestore/online"
	"github.com/sluicehq/sluice/schemas"
	"github.com/sluicehq/sluice/stream"
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

	store, err := online.Open(t.TempDir(), online.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	run := func() {
		ctx, cancel := context.WithCancel(t.Context())
		eng := stream.NewEngine(h.cluster, h.registry, store, h.producer, stream.Options{History: history})
		done := make(chan error, 1)
		go func() { done <- eng.Run(ctx) }()
		waitLag(t, func(ctx context.Context) (int64, error) { return eng.Lag(ctx, h.registry) })
		cancel()
		if err := <-done; err != nil {
			t.Errorf("engine: %v", err)
		}
	}
	run()
	run() // a restart has offsets: no second backfill
	if calls != 1 {
		t.Errorf("history read %d times, want 1", calls)
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
