package stream

import (
	"context"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors/kafka"
	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/testkit"
)

// newTestEngine returns an engine over a fresh store and a registry that
// holds the repository yaml (startRegistry), with the registry and a
// producer that writes records to the partitions they name.
func newTestEngine(t *testing.T, yaml string) (*Engine, *featurestore.Registry, *kgo.Client) {
	t.Helper()
	cluster, producer, reg := startRegistry(t, yaml)
	manual, err := cluster.Producer(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(manual.Close)
	e := NewEngine(cluster, reg, testkit.OnlineStore(t), producer, Options{})
	t.Cleanup(e.closeTxn)
	return e, reg, manual
}

// startRegistry starts a broker and a registry on it, which creates the
// topics of what it applies, and applies the repository yaml; it returns
// the cluster, the producer the registry writes with and the registry.
func startRegistry(t *testing.T, yaml string) (kafka.Cluster, *kgo.Client, *featurestore.Registry) {
	t.Helper()
	b := testkit.StartBroker(t)
	cluster := kafka.Cluster{Brokers: []string{b.Addr()}}
	producer, err := cluster.Producer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(producer.Close)
	log, err := kafka.NewRegistryLog(t.Context(), cluster, producer)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := featurestore.OpenRegistry(t.Context(), log, func(ctx context.Context, next *featurestore.Repo) error {
		return kafka.EnsureTopics(ctx, producer, kafka.TopicsFor(next)...)
	})
	if err != nil {
		t.Fatal(err)
	}
	repo, err := featurestore.Parse(map[string][]byte{"repo.yaml": []byte(yaml)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Apply(t.Context(), repo, false); err != nil {
		t.Fatal(err)
	}
	return cluster, producer, reg
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
schema:
  - {name: user_id, type: string}
  - {name: merchant_id, type: string}
  - {name: ts, type: timestamp}
---
kind: feature_view
name: merchant_clicks
entity: merchant
source: clicks
features:
  - {name: events, agg: count}
`

// TestRepartitionedViewIsReadyOnceReKeyed pins when a view keyed by
// another entity counts as caught up: its repartition topic fills from
// every partition of the stream, so a partition of it is marked only once
// the stream is marked re-keyed on all of them (by whichever workers own
// them), and once the view has applied what the topic held then. Its
// offsets reaching the repartition job's are not enough: the job consumes
// only what has been re-keyed so far.
func TestRepartitionedViewIsReadyOnceReKeyed(t *testing.T) {
	e, reg, producer := newTestEngine(t, merchantRepo)
	repo, cv, topo := layout(t, reg, "merchant_clicks")
	repart := kafka.RepartitionTopic("merchant_clicks")
	produce := func(topic string, n int) { produceTo(t, producer, topic, 0, n) }
	offsets := func(at map[string]int64) { setOffsets(t, e, 0, at) }
	// The worker owns partition 0 of both topics; other workers own the
	// rest.
	e.owned.assign(map[string][]int32{"clicks": {0}, repart: {0}})
	marks := func(want ...featurestore.ReadyMark) { expectMarks(t, e, topo, want...) }
	ready := featurestore.ReadyMark{View: "merchant_clicks", Version: 1, Partition: 0, Partitions: kafka.DefaultPartitions}
	rerouted := ready
	rerouted.Rerouted = true
	caughtUp := func() bool {
		t.Helper()
		up, err := e.CaughtUp(repo, cv)
		if err != nil {
			t.Fatal(err)
		}
		return up
	}

	produce("clicks", 3)
	produce(repart, 2)
	offsets(map[string]int64{"clicks": 3, rerouteKey(cv): 1, jobName(repo, cv.View): 2, viewKey(cv): 2})
	marks() // the view has applied all its topic holds, but one event is not re-keyed yet
	if caughtUp() {
		t.Error("caught up before the stream is re-keyed")
	}
	offsets(map[string]int64{rerouteKey(cv): 3})
	marks(rerouted)
	marks() // the other workers have not marked their partitions re-keyed

	var others []featurestore.ReadyMark
	for p := int32(1); p < kafka.DefaultPartitions; p++ {
		m := rerouted
		m.Partition = p
		others = append(others, m)
	}
	if err := reg.MarkReady(t.Context(), others...); err != nil {
		t.Fatal(err)
	}
	produce(repart, 1) // re-keyed by another worker before it marked
	marks()            // the view has not applied it
	offsets(map[string]int64{jobName(repo, cv.View): 3, viewKey(cv): 3})
	marks(ready)
	if caughtUp() {
		t.Error("caught up while the other partitions of the repartition topic are unmarked")
	}
	for i := range others {
		others[i].Rerouted = false
	}
	if err := reg.MarkReady(t.Context(), others...); err != nil {
		t.Fatal(err)
	}
	if !caughtUp() {
		t.Error("not caught up with every partition marked")
	}
}

// layout compiles a view of the registry's repository and lays out the
// engine's topics for it.
func layout(t *testing.T, reg *featurestore.Registry, view string) (*featurestore.Repo, *featurestore.CompiledView, *topology) {
	t.Helper()
	repo := reg.Repo()
	cv, err := featurestore.Compile(repo, view)
	if err != nil {
		t.Fatal(err)
	}
	topo, err := newTopology(repo, true)
	if err != nil {
		t.Fatal(err)
	}
	return repo, cv, topo
}

// produceTo writes n records to a partition of a topic.
func produceTo(t *testing.T, cl *kgo.Client, topic string, p int32, n int) {
	t.Helper()
	for range n {
		r := &kgo.Record{Topic: topic, Partition: p, Value: []byte("{}")}
		if err := cl.ProduceSync(t.Context(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// setOffsets commits progress offsets of one partition to the engine's
// store.
func setOffsets(t *testing.T, e *Engine, p int32, at map[string]int64) {
	t.Helper()
	b := e.store.NewBatch()
	for name, next := range at {
		if err := b.SetOffset(name, p, next); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
}

// expectMarks checks the marks the engine's partitions call for, then
// records them in the registry as markReady would.
func expectMarks(t *testing.T, e *Engine, topo *topology, want ...featurestore.ReadyMark) {
	t.Helper()
	got, err := e.readyMarks(t.Context(), topo)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, func(a, b featurestore.ReadyMark) int { return int(a.Partition - b.Partition) })
	if !slices.Equal(got, want) {
		t.Errorf("marks %+v, want %+v", got, want)
	}
	if err := e.job.registry.MarkReady(t.Context(), got...); err != nil {
		t.Fatal(err)
	}
}

const clicksRepo = `
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
`

// TestMarksWaitForWhatThePartitionHeld covers two partitions a worker is
// given. One it replays from the start, holding no progress of it, so its
// job's offsets move with the view's: it is marked only once the view has
// passed the end the partition had when the worker took it. The other
// holds no record any more (retention removed them), so the new version
// has nothing to apply there and is marked although it consumed nothing.
func TestMarksWaitForWhatThePartitionHeld(t *testing.T) {
	e, reg, producer := newTestEngine(t, clicksRepo)
	_, cv, topo := layout(t, reg, "user_clicks")
	e.owned.assign(map[string][]int32{"clicks": {0, 1}})
	produceTo(t, producer, "clicks", 0, 5)
	produceTo(t, producer, "clicks", 1, 3)
	setOffsets(t, e, 0, map[string]int64{"clicks": 2, viewKey(cv): 2})
	setOffsets(t, e, 1, map[string]int64{"clicks": 3})
	expectMarks(t, e, topo)

	setOffsets(t, e, 0, map[string]int64{"clicks": 5, viewKey(cv): 5})
	var gone kadm.Offsets
	gone.AddOffset("clicks", 1, 3, -1)
	resp, err := kadm.NewClient(producer).DeleteRecords(t.Context(), gone)
	if err != nil {
		t.Fatal(err)
	}
	resp.Each(func(r kadm.DeleteRecordsResponse) {
		if r.Err != nil {
			t.Fatalf("delete records of partition %d: %v", r.Partition, r.Err)
		}
	})
	mark := func(p int32) featurestore.ReadyMark {
		return featurestore.ReadyMark{View: "user_clicks", Version: 1, Partition: p, Partitions: kafka.DefaultPartitions}
	}
	expectMarks(t, e, topo, mark(0), mark(1))
}
