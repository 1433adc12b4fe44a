package stream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors/kafka"
	"github.com/sluicehq/sluice/featurestore/offline"
	"github.com/sluicehq/sluice/schemas"
	"github.com/sluicehq/sluice/testkit"
)

// TestBuildsPauseWhatTheyBuild follows the partitions of a backfill in
// progress through assignments and revocations: each is paused in the
// consumer while it is to be built, and let go when it is revoked, so a
// partition that comes back already built elsewhere is fetched again.
func TestBuildsPauseWhatTheyBuild(t *testing.T) {
	e, reg, _ := newTestEngine(t, clicksRepo)
	cl := joinGroup(t, e, "clicks")
	_, _, topo := layout(t, reg, "user_clicks")
	job := topo.byTopic["clicks"]
	cv := job.views[0]
	building := func() map[string][]int32 {
		out := map[string][]int32{}
		for _, b := range e.builds {
			for p := range b.parts {
				out[b.topic] = append(out[b.topic], p)
			}
			slices.Sort(out[b.topic])
		}
		return out
	}
	paused := func() map[string][]int32 {
		out := cl.PauseFetchPartitions(nil)
		for _, ps := range out {
			slices.Sort(ps)
		}
		return out
	}
	steps := []struct {
		name string
		do   func()
		want map[string][]int32
	}{
		{"assigned", func() { e.addBuild("clicks", job, cv, []int32{0, 1}) }, map[string][]int32{"clicks": {0, 1}}},
		{"assigned more", func() { e.addBuild("clicks", job, cv, []int32{2}) }, map[string][]int32{"clicks": {0, 1, 2}}},
		{"one revoked", func() { e.dropBuilds(map[string][]int32{"clicks": {1}}) }, map[string][]int32{"clicks": {0, 2}}},
		{"the rest revoked", func() { e.dropBuilds(map[string][]int32{"clicks": {0, 2}}) }, map[string][]int32{}},
		{"assigned again", func() { e.addBuild("clicks", job, cv, []int32{3}) }, map[string][]int32{"clicks": {3}}},
	}
	for _, s := range steps {
		s.do()
		if diff := cmp.Diff(s.want, building()); diff != "" {
			t.Errorf("%s: partitions being built (-want +got):\n%s", s.name, diff)
		}
		if diff := cmp.Diff(s.want, paused()); diff != "" {
			t.Errorf("%s: partitions paused (-want +got):\n%s", s.name, diff)
		}
	}
	if len(e.builds) != 1 {
		t.Errorf("%d backfills of the view, want 1", len(e.builds))
	}
	e.dropBuilds(nil) // the consumer stops
	if len(e.builds) != 0 {
		t.Errorf("%d backfills left after the consumer stopped, want none", len(e.builds))
	}
}

// TestUnfinishedBuildsLeaveTheLastWordToTheFinishedOne covers a partition
// whose build is interrupted: its worker committed part of the history,
// then another worker's unfinished build wrote older values of the same
// entity to the changelog. When the first worker builds the partition
// again, the rows it applied before are not applied twice, yet the entity
// must be written again: a restore takes the changelog's last values.
func TestUnfinishedBuildsLeaveTheLastWordToTheFinishedOne(t *testing.T) {
	a, reg, _ := newTestEngine(t, clicksRepo)
	_, cv, _ := layout(t, reg, "user_clicks")
	const n = 2 * backfillBatchRows
	ts := time.Now().Add(-time.Hour).UnixMicro()
	rows := make([]offline.Row, n)
	for i := range rows {
		rows[i] = offline.Row{Values: []any{"u", ts + int64(i)}, Key: "u", EventID: fmt.Sprintf("b%d", i),
			EventTime: ts + int64(i), Arrival: ts + int64(i), Partition: 0, Offset: int64(i)}
	}
	var calls atomic.Int32
	history := func(ctx context.Context, _ string, _ *schemas.Schema, fn func(*offline.Row) error) (map[int32]int64, error) {
		for i := range rows {
			if err := fn(&rows[i]); err != nil {
				return nil, err
			}
		}
		if calls.Add(1) == 1 { // the first build stops here, unfinished
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return map[int32]int64{0: n}, nil
	}
	run := func(e *Engine) func() {
		ctx, cancel := context.WithCancel(t.Context())
		ran := make(chan error, 1)
		go func() { ran <- e.Run(ctx) }()
		return func() { cancel(); <-ran }
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		err := testkit.Eventually(t.Context(), 30*time.Second, func() error {
			if !ok() {
				return errors.New(what)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	a.history = history
	stop := run(a)
	waitFor("the first build has not committed the history's rows", func() bool { return clickCount(t, a, cv) == n })
	stop()

	// Another worker's unfinished build: older values of u's state, as
	// its first transaction wrote them, after the first worker's.
	topic := kafka.ChangelogTopic("user_clicks")
	var older []*kgo.Record
	seen := map[string]int{}
	for _, r := range readChangelog(t, a, topic, true) {
		if seen[string(r.Key)]++; seen[string(r.Key)] == 1 {
			older = append(older, &kgo.Record{Topic: r.Topic, Partition: r.Partition, Key: r.Key, Value: r.Value, Headers: r.Headers})
		}
	}
	older = slices.DeleteFunc(older, func(r *kgo.Record) bool { return seen[string(r.Key)] == 1 })
	if len(older) == 0 {
		t.Fatal("the first build wrote no entity twice")
	}
	if err := a.producer.ProduceSync(t.Context(), older...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	again := NewEngine(a.cluster, reg, a.store, a.producer, Options{History: history})
	t.Cleanup(again.closeTxn)
	stop = run(again)
	waitFor("the build has not finished", func() bool {
		offs, err := again.store.Offsets(viewKey(cv))
		return err == nil && offs[0] == n
	})
	stop()
	if got := clickCount(t, again, cv); got != n {
		t.Errorf("the building worker counts %d, want %d", got, n)
	}
	// A worker that restores the partition from the changelog.
	fresh := NewEngine(a.cluster, reg, testkit.OnlineStore(t), a.producer, Options{})
	t.Cleanup(fresh.closeTxn)
	stop = run(fresh)
	defer stop()
	waitFor("the partition was not restored", func() bool {
		offs, err := fresh.store.Offsets(viewKey(cv))
		return err == nil && offs[0] == n
	})
	if got := clickCount(t, fresh, cv); got != n {
		t.Errorf("restored from the changelog: count %d, want %d", got, n)
	}
}

// readChangelog reads partition 0 of a changelog up to its end, with the
// records of aborted transactions unless committed; control records are
// left out.
func readChangelog(t *testing.T, e *Engine, topic string, committed bool) []*kgo.Record {
	t.Helper()
	ends, err := kafka.EndOffsets(t.Context(), e.producer, topic)
	if err != nil {
		t.Fatal(err)
	}
	opts := []kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}), kgo.KeepControlRecords()}
	if committed {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl, err := e.cluster.Client(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var out []*kgo.Record
	for done := false; !done; {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("changelog %s not read to its end %d: %v", topic, ends[topic][0], ctx.Err())
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
			done = done || r.Offset+1 >= ends[topic][0]
		})
	}
	return out
}
