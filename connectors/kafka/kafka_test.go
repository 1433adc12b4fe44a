package kafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"go.uber.org/goleak"

	"github.com/sluicehq/sluice/connectors/kafka"
	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRegistryLogRoundTripAndFollow(t *testing.T) {
	b := testkit.StartBroker(t)
	cluster := kafka.Cluster{Brokers: []string{b.Addr()}}
	producer, err := cluster.Producer()
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	log, err := kafka.NewRegistryLog(t.Context(), cluster, producer)
	if err != nil {
		t.Fatal(err)
	}
	if recs, err := log.ReadAll(t.Context()); err != nil || len(recs) != 0 {
		t.Fatalf("empty log: %v, %v", recs, err)
	}
	first := []featurestore.Record{{Key: "entity/user", Value: []byte(`{"a":1}`)}, {Key: "stream/s", Value: []byte(`{"b":2}`)}}
	if err := log.Append(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	tomb := []featurestore.Record{{Key: "stream/s"}}
	if err := log.Append(t.Context(), tomb); err != nil {
		t.Fatal(err)
	}
	got, err := log.ReadAll(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]featurestore.Record(nil), first...), featurestore.Record{Key: "stream/s", Value: nil})
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b []byte) bool { return string(a) == string(b) })); diff != "" {
		t.Errorf("ReadAll (-want +got):\n%s", diff)
	}

	// Follow delivers what is there, then what another writer appends.
	ctx, cancel := context.WithCancel(t.Context())
	seen := make(chan featurestore.Record, 10)
	done := make(chan error, 1)
	go func() {
		done <- log.Follow(ctx, func(batch []featurestore.Record) {
			for _, r := range batch {
				seen <- r
			}
		})
	}()
	later := featurestore.Record{Key: "entity/merchant", Value: []byte(`{"c":3}`)}
	if err := log.Append(t.Context(), []featurestore.Record{later}); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for len(keys) < 4 {
		select {
		case r := <-seen:
			keys = append(keys, r.Key)
		case <-time.After(10 * time.Second):
			t.Fatalf("Follow delivered only %v", keys)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"entity/user", "stream/s", "stream/s", "entity/merchant"}, keys); diff != "" {
		t.Errorf("Follow order (-want +got):\n%s", diff)
	}
}

func TestEnsureTopicsAndTopicsFor(t *testing.T) {
	b := testkit.StartBroker(t)
	cluster := kafka.Cluster{Brokers: []string{b.Addr()}}
	cl, err := cluster.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	repo, err := featurestore.Parse(map[string][]byte{"r.yaml": []byte(`
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
name: by_user
entity: user
source: clicks
features: [{name: n, agg: count}]
---
kind: feature_view
name: by_merchant
entity: merchant
source: clicks
features: [{name: n, agg: count}]
`)})
	if err != nil {
		t.Fatal(err)
	}
	topics := kafka.TopicsFor(repo)
	want := []kafka.Topic{
		{Name: "clicks"},
		{Name: "sluice.changelog.by_merchant", Compacted: true, Like: "sluice.repartition.by_merchant"},
		{Name: "sluice.changelog.by_user", Compacted: true, Like: "clicks"},
		{Name: "sluice.dlq.clicks"},
		{Name: "sluice.repartition.by_merchant"},
	}
	if diff := cmp.Diff(want, topics); diff != "" {
		t.Fatalf("TopicsFor (-want +got):\n%s", diff)
	}
	// The stream's topic exists already, wider than the default: the
	// changelog of the view that consumes it takes its width.
	if _, err := kadm.NewClient(cl).CreateTopic(t.Context(), 12, -1, nil, "clicks"); err != nil {
		t.Fatal(err)
	}
	for range 2 { // a second call finds them all and changes nothing
		if err := kafka.EnsureTopics(t.Context(), cl, topics...); err != nil {
			t.Fatal(err)
		}
	}
	details, err := kadm.NewClient(cl).ListTopics(t.Context(), "clicks", "sluice.changelog.by_user", "sluice.changelog.by_merchant", "sluice.dlq.clicks")
	if err != nil {
		t.Fatal(err)
	}
	for topic, parts := range map[string]int{
		"clicks":                       12,
		"sluice.changelog.by_user":     12,
		"sluice.changelog.by_merchant": kafka.DefaultPartitions, // its view consumes the repartition topic
		"sluice.dlq.clicks":            kafka.DefaultPartitions,
	} {
		if n := len(details[topic].Partitions); n != parts {
			t.Errorf("%s has %d partitions, want %d", topic, n, parts)
		}
	}
	cfgs, err := kadm.NewClient(cl).DescribeTopicConfigs(t.Context(), "sluice.changelog.by_user")
	if err != nil {
		t.Fatal(err)
	}
	policy := ""
	for _, c := range cfgs[0].Configs {
		if c.Key == "cleanup.policy" && c.Value != nil {
			policy = *c.Value
		}
	}
	if policy != "compact" {
		t.Errorf("changelog cleanup.policy = %q, want compact", policy)
	}
}
