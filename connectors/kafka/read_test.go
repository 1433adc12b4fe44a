package kafka_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors/kafka"
	"github.com/sluicehq/sluice/testkit"
)

// readAll reads a topic's partition 0 from its start to its end with
// ReadCommitted: the values of its records, "marker" for a transaction
// marker.
func readAll(t *testing.T, cl *kgo.Client, topic string) []string {
	t.Helper()
	ends, err := kafka.EndOffsets(t.Context(), cl, topic)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	err = kafka.ReadCommitted(t.Context(), cl, topic, map[int32]int64{0: 0}, map[int32]int64{0: ends[topic][0]}, func(r *kgo.Record) error {
		if r.Attrs.IsControl() {
			got = append(got, "marker")
		} else {
			got = append(got, string(r.Value))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// produceTxn writes values in one transaction of client cl and ends it.
func produceTxn(t *testing.T, cl *kgo.Client, topic string, commit kgo.TransactionEndTry, values ...string) {
	t.Helper()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, v := range values {
		if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: topic, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.EndTransaction(t.Context(), commit); err != nil {
		t.Fatal(err)
	}
}

// TestReadCommittedSkipsAbortedTransactions reads a partition holding
// plain records, a committed transaction and an aborted one.
func TestReadCommittedSkipsAbortedTransactions(t *testing.T) {
	b := testkit.StartBroker(t)
	cluster := kafka.Cluster{Brokers: []string{b.Addr()}}
	if err := kafka.EnsureTopics(t.Context(), mustProducer(t, cluster), kafka.Topic{Name: "t", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	plain := mustProducer(t, cluster)
	txn := mustProducer(t, cluster, kgo.TransactionalID("reader-test"))
	if err := plain.ProduceSync(t.Context(), &kgo.Record{Topic: "t", Value: []byte("plain")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	produceTxn(t, txn, "t", kgo.TryCommit, "kept-1", "kept-2")
	produceTxn(t, txn, "t", kgo.TryAbort, "dropped")
	want := []string{"plain", "kept-1", "kept-2", "marker", "marker"}
	if diff := cmp.Diff(want, readAll(t, plain, "t")); diff != "" {
		t.Errorf("records read (-want +got):\n%s", diff)
	}
}

// TestReadCommittedEndsAfterACrash reads a partition whose last records
// belong to a transaction that was open when the broker crashed: on
// restart the broker aborts it without writing a marker, so nothing a
// consumer can see follows the last committed record. The read still
// ends.
func TestReadCommittedEndsAfterACrash(t *testing.T) {
	dir := t.TempDir()
	b, err := kafka.StartBroker("127.0.0.1:0", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	cluster := kafka.Cluster{Brokers: []string{b.Addr()}}
	plain := mustProducer(t, cluster)
	if err := kafka.EnsureTopics(t.Context(), plain, kafka.Topic{Name: "t", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	if err := plain.ProduceSync(t.Context(), &kgo.Record{Topic: "t", Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	txn := mustProducer(t, cluster, kgo.TransactionalID("crash-test"))
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txn.ProduceSync(t.Context(), &kgo.Record{Topic: "t", Value: []byte("open")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// The data dir as a crash leaves it: the transaction open.
	crashed := t.TempDir()
	if err := os.CopyFS(filepath.Join(crashed, "kafka"), os.DirFS(filepath.Join(dir, "kafka"))); err != nil {
		t.Fatal(err)
	}
	txn.Close()
	plain.Close()
	b.Close()

	b, err = kafka.StartBroker("127.0.0.1:0", crashed, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cl := mustProducer(t, kafka.Cluster{Brokers: []string{b.Addr()}})
	ends, err := kafka.EndOffsets(t.Context(), cl, "t")
	if err != nil {
		t.Fatal(err)
	}
	if ends["t"][0] != 2 {
		t.Fatalf("end offset %d after the crash, want 2: the open transaction's record kept", ends["t"][0])
	}
	if diff := cmp.Diff([]string{"before"}, readAll(t, cl, "t")); diff != "" {
		t.Errorf("records read (-want +got):\n%s", diff)
	}
	// A producer of its own commits after the aborted records; as long as
	// the broker holds no marker for them, readers would drop the later
	// records of the producer that wrote them.
	produceTxn(t, mustProducer(t, kafka.Cluster{Brokers: []string{b.Addr()}}, kgo.TransactionalID("crash-test-2")), "t", kgo.TryCommit, "after")
	if diff := cmp.Diff([]string{"before", "after", "marker"}, readAll(t, cl, "t")); diff != "" {
		t.Errorf("records read after a commit (-want +got):\n%s", diff)
	}
}

func mustProducer(t *testing.T, cluster kafka.Cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := cluster.Producer(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}
