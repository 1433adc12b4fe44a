package stream

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors/kafka"
	"github.com/sluicehq/sluice/featurestore/online"
	"github.com/sluicehq/sluice/testkit"
)

// TestPositionsAdvanceOnlyOverTheirOwnEntries checks when a batch's
// changelog records move the store's position of the source partitions
// they came from: only when they start at it and nothing came between
// them.
func TestPositionsAdvanceOnlyOverTheirOwnEntries(t *testing.T) {
	e, _, _ := newTestEngine(t, clicksRepo)
	topic := kafka.ChangelogTopic("user_clicks")
	// records are changelog records of one batch, as produced: source
	// partition and the offset each took in changelog partition 1.
	records := func(at ...[2]int64) ([][]*kgo.Record, [][]int32) {
		var recs []*kgo.Record
		var sources []int32
		for _, a := range at {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: 1, Offset: a[1]})
			sources = append(sources, int32(a[0]))
		}
		return [][]*kgo.Record{recs}, [][]int32{sources}
	}
	set := func(p int32, pos int64) {
		t.Helper()
		b := e.store.NewBatch()
		defer b.Discard()
		if err := b.SetChangelogPosition("user_clicks", p, pos); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		stored map[int32]int64
		batch  [][2]int64
		starts map[int32]int64
		want   map[int32]int64
		// sealed: positions the engine's last transaction set
		sealed        map[int32]int64
		transactional bool
	}{
		{"follows the position", map[int32]int64{1: 10}, [][2]int64{{1, 10}, {1, 11}, {1, 12}}, nil, map[int32]int64{1: 13}, nil, false},
		{"another writer before it", map[int32]int64{1: 10}, [][2]int64{{1, 11}, {1, 12}}, nil, map[int32]int64{1: 10}, nil, false},
		{"another writer within it", map[int32]int64{1: 10}, [][2]int64{{1, 10}, {1, 12}}, nil, map[int32]int64{1: 10}, nil, false},
		{"a source partition sharing the changelog's", map[int32]int64{1: 10, 9: 4}, [][2]int64{{1, 10}, {1, 11}}, nil, map[int32]int64{1: 12, 9: 4}, nil, false},
		{"no position", nil, [][2]int64{{1, 0}, {1, 1}}, nil, map[int32]int64{}, nil, false},
		{"no position, first in the changelog", nil, [][2]int64{{1, 3}, {1, 4}}, map[int32]int64{1: 3}, map[int32]int64{1: 5}, nil, false},
		{"no position, not first", nil, [][2]int64{{1, 4}, {1, 5}}, map[int32]int64{1: 3}, map[int32]int64{}, nil, false},
		{"after its own commit marker", map[int32]int64{1: 10}, [][2]int64{{1, 11}, {1, 12}}, nil, map[int32]int64{1: 13}, map[int32]int64{1: 10}, true},
		{"more than its marker before it", map[int32]int64{1: 10}, [][2]int64{{1, 12}, {1, 13}}, nil, map[int32]int64{1: 10}, map[int32]int64{1: 10}, true},
		{"a marker at another position", map[int32]int64{1: 10}, [][2]int64{{1, 11}, {1, 12}}, nil, map[int32]int64{1: 10}, map[int32]int64{1: 8}, true},
		{"written outside a transaction after one", map[int32]int64{1: 10}, [][2]int64{{1, 11}, {1, 12}}, nil, map[int32]int64{1: 10}, map[int32]int64{1: 10}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.store = testkit.OnlineStore(t)
			e.sealed = map[sourceAt]int64{}
			for p, pos := range tc.sealed {
				e.sealed[sourceAt{"user_clicks", p}] = pos
			}
			for p, pos := range tc.stored {
				set(p, pos)
			}
			produced, sources := records(tc.batch...)
			positions, err := e.advancedPositions(produced, sources, tc.starts, tc.transactional)
			if err != nil {
				t.Fatal(err)
			}
			if err := e.writePositions(positions); err != nil {
				t.Fatal(err)
			}
			got, err := e.store.ChangelogPositions("user_clicks")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("positions (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSupersededEntries checks which changelog entries after a position a
// catch-up passes over: those whose offsets go no further than the
// store's own, for every progress name they carry.
func TestSupersededEntries(t *testing.T) {
	e, _, manual := newTestEngine(t, clicksRepo)
	topic := kafka.ChangelogTopic("user_clicks")
	setOffsets(t, e, 0, map[string]int64{"view.user_clicks.1": 10})
	setOffsets(t, e, 1, map[string]int64{"view.user_clicks.1": 10})
	offsets := func(p int32, name string, next int64) *kgo.Record {
		c := online.OffsetChange("user_clicks", name, p, next)
		return &kgo.Record{Topic: topic, Partition: p, Key: c.Key, Value: c.Value}
	}
	// Partition 0: a backfill that got to 5. Partition 1: the same, then
	// entries of another version the store holds nothing of.
	recs := []*kgo.Record{
		offsets(0, "view.user_clicks.1", 5),
		offsets(1, "view.user_clicks.1", 5),
		offsets(1, "view.user_clicks.2", 3),
	}
	if err := manual.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	plan := &restorePlan{
		since: map[int32]int64{0: 0, 1: 0},
		read:  []int32{0, 1},
		own:   map[int32]int64{0: 10, 1: 10},
	}
	upTo := map[int32]int64{0: 1, 1: 2}
	got, err := e.superseded(t.Context(), topic, plan, kafka.DefaultPartitions, map[int32]int64{0: 0, 1: 0}, upTo)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[int32]int64{0: 1}, got); diff != "" {
		t.Errorf("superseded (-want +got):\n%s", diff)
	}
}
