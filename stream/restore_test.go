package stream_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors/kafka"
	"github.com/sluicehq/sluice/stream"
	"github.com/sluicehq/sluice/testkit"
)

// TestRestoreFromChangelog runs a worker over some events, then a second
// worker with an empty store in the same group: it must rebuild the state
// from the changelogs (applying none of the old records again), remember
// the old event ids, and continue with the new records.
func TestRestoreFromChangelog(t *testing.T) {
	h := newHarness(t, repoYAML+extraView)
	first := testkit.OnlineStore(t)
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	var old []rec
	for i := range 40 {
		old = append(old, click(fmt.Sprintf("u%d", i%7), fmt.Sprintf("old-%d", i), i, ts+int64(i)))
	}
	old = append(old, rec{"u1", "", `{"user_id":"u1","n":"bad","ts":1}`}) // a dead letter
	h.produce(t, old...)
	stop := runEngine(t, h, first)
	stop()

	second := testkit.OnlineStore(t)
	// New events, and one old id sent again.
	h.produce(t, click("u0", "new-1", 100, ts+100), click("u8", "new-2", 5, ts+101), click("u3", "old-3", 3, ts+3))
	reg := prometheus.NewRegistry()
	defer runEngineWith(t, h, second, stream.Options{Registerer: reg})()

	want := map[string][2]int64{} // user: total, count
	for i := range 40 {
		u := fmt.Sprintf("u%d", i%7)
		w := want[u]
		want[u] = [2]int64{w[0] + int64(i), w[1] + 1}
	}
	want["u0"] = [2]int64{want["u0"][0] + 100, want["u0"][1] + 1}
	want["u8"] = [2]int64{5, 1}
	repo := h.registry.Repo()
	at := ts*1000 + 1_000_000
	for u, w := range want {
		got := read(t, second, repo, "user_clicks", u, at)
		if got[0].V != w[0] || got[1].V != w[1] {
			t.Errorf("user %s on the restored worker: total %v count %v, want %d and %d", u, got[0].V, got[1].V, w[0], w[1])
		}
		// The second view of the stream, filtered differently (n >= 0
		// holds for every event here): restored from its own changelog.
		if got := read(t, second, repo, "user_clicks_late", u, at); got[0].V != w[1] {
			t.Errorf("user %s, second view, on the restored worker: count %v, want %d", u, got[0].V, w[1])
		}
	}
	if got := counter(t, reg, "sluice_stream_events_total", map[string]string{"outcome": "applied"}); got != 2 {
		t.Errorf("restored worker applied %v records, want 2 (the new ones; the old come from the changelog)", got)
	}
	if got := counter(t, reg, "sluice_stream_events_total", map[string]string{"outcome": "duplicate"}); got != 1 {
		t.Errorf("restored worker counted %v duplicates, want 1 (an id seen before the move)", got)
	}
	if got := counter(t, reg, "sluice_stream_restored_entries_total", nil); got == 0 {
		t.Error("sluice_stream_restored_entries_total = 0, want the entries restored")
	}
	if dead := consumeAll(t, h, kafka.DLQTopic("clicks")); len(dead) != 1 {
		t.Errorf("%d dead letters after the move, want 1 (not written again)", len(dead))
	}
}

// counter sums the values of a counter's series that carry every label in
// labels.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				found := false
				for _, l := range m.GetLabel() {
					if l.GetName() == k && l.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue metrics
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// TestChangelogEndsEachBatchWithItsOffsets reads a view's changelog after
// the engine applied a stream: in every partition the last entries are
// offsets, so that no prefix of a batch's entries carries offsets past
// state or seen ids that are not in the log.
func TestChangelogEndsEachBatchWithItsOffsets(t *testing.T) {
	h := newHarness(t, repoYAML)
	store := testkit.OnlineStore(t)
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	var recs []rec
	for i := range 30 {
		recs = append(recs, click(fmt.Sprintf("u%d", i%5), fmt.Sprintf("id-%d", i), i, ts+int64(i)))
	}
	h.produce(t, recs...)
	runEngine(t, h, store)()

	last := map[int32]*kgo.Record{}
	kinds := map[byte]int{}
	for _, r := range consumeAll(t, h, kafka.ChangelogTopic("user_clicks")) {
		last[r.Partition] = r
		kinds[r.Key[0]]++
	}
	if kinds['d'] == 0 || kinds['t'] == 0 || kinds['o'] == 0 {
		t.Fatalf("changelog entries by kind %v, want seen ids (d), tiles (t) and offsets (o)", kinds)
	}
	for p, r := range last {
		if r.Key[0] != 'o' {
			t.Errorf("changelog partition %d ends with a %q entry, want its offsets last", p, r.Key[0])
		}
	}
}

// TestRestoreLeavesOutABatchWithoutItsOffsets restores from a changelog
// whose last batch lost its offsets, as when a worker dies between
// producing a batch's state and its offsets: the restore must leave that
// batch out and replay its records, which then count once. The events
// carry no id, so no seen id could hide a double count.
func TestRestoreLeavesOutABatchWithoutItsOffsets(t *testing.T) {
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	var first, second []rec
	for i := range 10 {
		first = append(first, click("a", "", i+1, ts+int64(i)))
		second = append(second, click("a", "", i+11, ts+int64(10+i)))
	}
	cut := unfinishedChangelog(t, first, second)
	moved := newHarness(t, repoYAML)
	moved.produce(t, first...)
	moved.produce(t, second...)
	if err := moved.producer.ProduceSync(t.Context(), cut...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	restored := testkit.OnlineStore(t)
	defer runEngine(t, moved, restored)()

	got := read(t, restored, moved.registry.Repo(), "user_clicks", "a", ts*1000+1_000_000)
	if got[0].V != int64(210) || got[1].V != int64(20) {
		t.Errorf("restored worker: total %v count %v, want 210 and 20", got[0].V, got[1].V)
	}
}

// unfinishedChangelog applies first, then second, on a broker of its own,
// and returns the changelog of user_clicks without the offsets the second
// batch wrote last in each partition: what a worker leaves that dies
// between producing a batch's state and its offsets.
func unfinishedChangelog(t *testing.T, first, second []rec) []*kgo.Record {
	t.Helper()
	h := newHarness(t, repoYAML)
	store := testkit.OnlineStore(t)
	h.produce(t, first...)
	runEngine(t, h, store)()
	h.produce(t, second...)
	runEngine(t, h, store)()
	byPart := map[int32][]*kgo.Record{}
	for _, r := range consumeAll(t, h, kafka.ChangelogTopic("user_clicks")) {
		byPart[r.Partition] = append(byPart[r.Partition], r)
	}
	var cut []*kgo.Record
	dropped := 0
	for p, recs := range byPart {
		n := len(recs)
		for n > 0 && recs[n-1].Key[0] == 'o' {
			n--
		}
		dropped += len(recs) - n
		for _, r := range recs[:n] {
			cut = append(cut, &kgo.Record{Topic: r.Topic, Partition: p, Key: r.Key, Value: r.Value, Headers: r.Headers})
		}
	}
	if dropped == 0 {
		t.Fatal("the changelog holds no offsets to cut")
	}
	return cut
}

// TestReturningWorkerCatchesUp runs a worker, then a second one with an
// empty store that restores and goes on, then the first again after the
// stream's records are gone (retention): it must take what the second
// wrote from the changelog, rather than resume from its own older offsets
// on records that no longer exist.
func TestReturningWorkerCatchesUp(t *testing.T) {
	h := newHarness(t, repoYAML)
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	want := map[string][2]int64{} // user: total, count
	batch := func(from, n int) []rec {
		var recs []rec
		for i := from; i < from+n; i++ {
			u := fmt.Sprintf("u%d", i%6)
			recs = append(recs, click(u, fmt.Sprintf("id-%d", i), i, ts+int64(i)))
			w := want[u]
			want[u] = [2]int64{w[0] + int64(i), w[1] + 1}
		}
		return recs
	}
	first := testkit.OnlineStore(t)
	h.produce(t, batch(0, 30)...)
	runEngine(t, h, first)()
	h.produce(t, batch(30, 30)...)
	runEngine(t, h, testkit.OnlineStore(t))()

	ends, err := kafka.EndOffsets(t.Context(), h.producer, "clicks")
	if err != nil {
		t.Fatal(err)
	}
	var gone kadm.Offsets
	for p, end := range ends["clicks"] {
		gone.AddOffset("clicks", p, end, -1)
	}
	if _, err := kadm.NewClient(h.producer).DeleteRecords(t.Context(), gone); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	defer runEngineWith(t, h, first, stream.Options{Registerer: reg})()

	repo := h.registry.Repo()
	for u, w := range want {
		got := read(t, first, repo, "user_clicks", u, ts*1000+1_000_000)
		if got[0].V != w[0] || got[1].V != w[1] {
			t.Errorf("user %s on the returning worker: total %v count %v, want %d and %d", u, got[0].V, got[1].V, w[0], w[1])
		}
	}
	// The catch-up reads what the other worker wrote, not the whole log.
	all := len(consumeAll(t, h, kafka.ChangelogTopic("user_clicks")))
	if got := counter(t, reg, "sluice_stream_restored_entries_total", nil); got == 0 || got >= float64(all) {
		t.Errorf("sluice_stream_restored_entries_total = %v, want the other worker's entries, fewer than the changelog's %d", got, all)
	}
	if got := counter(t, reg, "sluice_stream_events_total", nil); got != 0 {
		t.Errorf("returning worker consumed %v records, want 0", got)
	}
}

// TestCatchUpLeavesOutAnUnfinishedBatch gets a worker back a partition
// whose changelog, after what another worker wrote, ends with entries
// of a batch that never wrote its offsets: the catch-up must stop at the
// last offsets and leave those entries out.
func TestCatchUpLeavesOutAnUnfinishedBatch(t *testing.T) {
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	var first, second, other []rec
	for i := range 10 {
		first = append(first, click("a", fmt.Sprintf("f%d", i), i+1, ts+int64(i)))
		second = append(second, click("a", fmt.Sprintf("s%d", i), i+11, ts+int64(10+i)))
		other = append(other, click("a", fmt.Sprintf("o%d", i), 1000, ts+int64(20+i)))
	}
	// The entries of other's batch alone, after first's: the state of
	// user a with other's events, without the batch's offsets.
	var cut []*kgo.Record
	byPart := map[int32][]*kgo.Record{}
	for _, r := range unfinishedChangelog(t, first, other) {
		byPart[r.Partition] = append(byPart[r.Partition], r)
	}
	for _, recs := range byPart {
		last := -1
		for i, r := range recs {
			if r.Key[0] == 'o' {
				last = i
			}
		}
		cut = append(cut, recs[last+1:]...)
	}
	if len(cut) == 0 {
		t.Fatal("no unfinished batch to append")
	}

	h := newHarness(t, repoYAML)
	back := testkit.OnlineStore(t)
	h.produce(t, first...)
	runEngine(t, h, back)()
	h.produce(t, second...)
	runEngine(t, h, testkit.OnlineStore(t))()
	if err := h.producer.ProduceSync(t.Context(), cut...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	defer runEngineWith(t, h, back, stream.Options{Registerer: reg})()

	got := read(t, back, h.registry.Repo(), "user_clicks", "a", ts*1000+1_000_000)
	if got[0].V != int64(210) || got[1].V != int64(20) {
		t.Errorf("returning worker: total %v count %v, want 210 and 20", got[0].V, got[1].V)
	}
	if got := counter(t, reg, "sluice_stream_restored_entries_total", nil); got == 0 {
		t.Error("the returning worker read nothing from the changelog, want the other worker's entries")
	}
}
