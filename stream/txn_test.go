package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/connectors/kafka"
	"github.com/sluicehq/sluice/featurestore/offline"
	"github.com/sluicehq/sluice/featurestore/online"
	"github.com/sluicehq/sluice/schemas"
	"github.com/sluicehq/sluice/testkit"
)

// joinGroup makes a member of the engine's consumer group, consuming
// topic, and has the engine commit under it, as a running engine does.
func joinGroup(t *testing.T, e *Engine, topic string) *kgo.Client {
	t.Helper()
	cl, err := e.cluster.Client(kgo.ConsumerGroup(e.job.group()), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	err = testkit.Eventually(t.Context(), 10*time.Second, func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		cl.PollFetches(ctx)
		if id, gen := cl.GroupMetadata(); id == "" || gen < 0 {
			return fmt.Errorf("not in group %s yet", e.job.group())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	e.joined(e.job.group(), cl)
	return cl
}

// staleMember is a group member as a worker dropped from the group, or
// left behind by a rebalance, still sees itself.
type staleMember struct {
	id         string
	generation int32
}

func (m staleMember) GroupMetadata() (string, int32) { return m.id, m.generation }

// changelogRecords returns the keys of what readChangelog reads.
func changelogRecords(t *testing.T, e *Engine, topic string, committed bool) []string {
	t.Helper()
	var out []string
	for _, r := range readChangelog(t, e, topic, committed) {
		out = append(out, string(r.Key))
	}
	return out
}

// TestTransactionsOfADroppedMemberAbort writes changelog records as a
// worker that the group has moved on from: a member with an old
// generation, and one the group no longer knows. The broker refuses their
// offsets, so the transactions abort and readers of committed records
// never see what they wrote; the current member's commit.
func TestTransactionsOfADroppedMemberAbort(t *testing.T) {
	e, _, _ := newTestEngine(t, clicksRepo)
	cl := joinGroup(t, e, "clicks")
	id, generation := cl.GroupMetadata()
	topic := kafka.ChangelogTopic("user_clicks")
	write := func(key string) error {
		c := online.OffsetChange("user_clicks", key, 0, 1)
		return e.writeChangelog(t.Context(), []*kgo.Record{changeRecord(c)}, map[string]map[int32]int64{"clicks": {0: 1}})
	}
	cases := []struct {
		key    string
		member staleMember
		want   error
	}{
		{"behind", staleMember{id, generation - 1}, kerr.IllegalGeneration},
		{"dropped", staleMember{"a-member-that-left", generation}, kerr.UnknownMemberID},
	}
	for _, c := range cases {
		e.member.Store(&groupMember{group: e.job.group(), cl: c.member})
		if err := write(c.key); !errors.Is(err, c.want) {
			t.Errorf("commit as %+v: %v, want %v", c.member, err, c.want)
		}
	}
	e.member.Store(nil)
	if err := write("outside"); !errors.Is(err, errNotMember) {
		t.Errorf("commit outside the group: %v, want %v", err, errNotMember)
	}
	e.joined(e.job.group(), cl)
	if err := write("current"); err != nil {
		t.Fatalf("commit as the current member: %v", err)
	}
	offsetsOf := func(keys []string) []string {
		var names []string
		for _, k := range keys {
			name, _, _ := online.OffsetOf([]byte(k))
			names = append(names, name)
		}
		return names
	}
	if got := offsetsOf(changelogRecords(t, e, topic, true)); len(got) != 1 || got[0] != "current" {
		t.Errorf("committed changelog records %q, want only the current member's", got)
	}
	// The refused ones were written, then aborted.
	if got := offsetsOf(changelogRecords(t, e, topic, false)); len(got) != 4 {
		t.Errorf("changelog records %q, want the three aborted ones before the committed one", got)
	}
}

// TestRestartAbortsTheTransactionLeftOpen leaves a changelog transaction
// open, as a worker killed half-way through a batch does: committed
// readers stop before it. A new run on the same store aborts it as soon as
// it starts its own transactions, instead of leaving readers to wait for
// it to time out, and writes as another producer.
func TestRestartAbortsTheTransactionLeftOpen(t *testing.T) {
	e, reg, _ := newTestEngine(t, clicksRepo)
	topic := kafka.ChangelogTopic("user_clicks")
	cl, err := e.openTxn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	c := online.OffsetChange("user_clicks", "killed", 0, 1)
	if err := cl.ProduceSync(t.Context(), changeRecord(c)).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(e.producer)
	stable := func() (int64, int64) {
		t.Helper()
		lso, err := adm.ListCommittedOffsets(t.Context(), topic)
		if err != nil {
			t.Fatal(err)
		}
		hwm, err := adm.ListEndOffsets(t.Context(), topic)
		if err != nil {
			t.Fatal(err)
		}
		l, _ := lso.Lookup(topic, 0)
		h, _ := hwm.Lookup(topic, 0)
		return l.Offset, h.Offset
	}
	if lso, hwm := stable(); lso != 0 || hwm != 1 {
		t.Fatalf("with the transaction open: stable offset %d, end %d; want 0 and 1", lso, hwm)
	}
	// The killed run's client is abandoned as it is; a new run opens the
	// same store.
	restarted := NewEngine(e.cluster, reg, e.store, e.producer, Options{})
	defer restarted.closeTxn()
	again, err := restarted.openTxn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// Each run writes as a producer of its own.
	before, _, err := cl.ProducerID(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	after, _, err := again.ProducerID(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if before == after {
		t.Errorf("the restarted run writes as producer %d, the killed run's", after)
	}
	if lso, hwm := stable(); lso != hwm || hwm < 2 {
		t.Errorf("after the restart: stable offset %d, end %d; want the abort marker written and everything stable", lso, hwm)
	}
	if got := changelogRecords(t, e, topic, true); len(got) != 0 {
		t.Errorf("committed changelog records %q, want none", got)
	}
}

// TestPositionsFollowTransactionsAcrossRebalances commits batches of one
// partition, each in a transaction whose commit marker lies between it
// and the next, with a rebalance that changes nothing for the partition
// in between: the store's position follows every batch, so a catch-up
// has nothing to read.
func TestPositionsFollowTransactionsAcrossRebalances(t *testing.T) {
	e, reg, _ := newTestEngine(t, clicksRepo)
	joinGroup(t, e, "clicks")
	_, _, topo := layout(t, reg, "user_clicks")
	ts := time.Now().Add(-time.Minute).UnixMilli()
	var next int64
	batch := func() {
		t.Helper()
		var recs []*kgo.Record
		for range 3 {
			recs = append(recs, &kgo.Record{Topic: "clicks", Partition: 2, Offset: next, Timestamp: time.Now(),
				Key: []byte("u"), Value: fmt.Appendf(nil, `{"user_id":"u","ts":%d}`, ts+next)})
			next++
		}
		if err := e.handle(t.Context(), topo, recs); err != nil {
			t.Fatal(err)
		}
		if err := e.settle(); err != nil {
			t.Fatal(err)
		}
	}
	// The first batch starts the changelog partition, with no position to
	// follow; the restore of the assignment sets one.
	if err := e.restore(t.Context(), topo, map[string][]int32{"clicks": {2}}); err != nil {
		t.Fatal(err)
	}
	batch()
	batch()
	if err := e.restore(t.Context(), topo, map[string][]int32{}); err != nil {
		t.Fatal(err)
	}
	batch()
	batch()
	positionAtLastMarker(t, e, 2)
}

// positionAtLastMarker checks that the store's position in user_clicks'
// changelog for source partition p is the partition's last record: the
// commit marker of the last batch.
func positionAtLastMarker(t *testing.T, e *Engine, p int32) {
	t.Helper()
	topic := kafka.ChangelogTopic("user_clicks")
	ends, err := kafka.EndOffsets(t.Context(), e.producer, topic)
	if err != nil {
		t.Fatal(err)
	}
	at, err := e.store.ChangelogPositions("user_clicks")
	if err != nil {
		t.Fatal(err)
	}
	if want := ends[topic][p] - 1; at[p] != want {
		t.Errorf("position of partition %d at %d, want %d (changelog end %d, less its last marker)", p, at[p], want, ends[topic][p])
	}
}

// runEngine runs e until the test ends.
func runEngine(t *testing.T, e *Engine) {
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	go func() { ran <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-ran
	})
}

// TestMemberDroppedMidBatchIsRefused drops the engine's member from its
// group while a batch waits to commit, as a long pause or a network split
// does. The batch must be refused, also when the consumer has rejoined by
// the time it commits: the engine waits for its batch in flight before it
// rejoins, so the batch's commit still names the dropped member.
func TestMemberDroppedMidBatchIsRefused(t *testing.T) {
	e, _, manual := newTestEngine(t, clicksRepo)
	entered, free := holdFirstFence(t)
	defer free() // before the engine stops, should the test fail first
	// Polls that come back empty leave the consumer alone: the engine's
	// idle wait for the batch in flight would hold the group back too.
	e.job.idleTick = time.Hour
	lines := &logLines{}
	e.job.logger = slog.New(lines)
	runEngine(t, e)
	ts := time.Now().Add(-time.Minute).UnixMilli()
	r := &kgo.Record{Topic: "clicks", Partition: 0, Key: []byte("u"), Value: fmt.Appendf(nil, `{"user_id":"u","ts":%d}`, ts)}
	if err := manual.ProduceSync(t.Context(), r).FirstErr(); err != nil {
		t.Fatal(err)
	}
	dropMemberAtFence(t, e, entered, free, "batch")
	err := testkit.Eventually(t.Context(), 20*time.Second, func() error {
		offs, err := e.store.Offsets("clicks")
		if err != nil || offs[0] != 1 {
			return fmt.Errorf("offsets %v, %v: want the record applied", offs, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	topic := kafka.ChangelogTopic("user_clicks")
	all, committed := changelogRecords(t, e, topic, false), changelogRecords(t, e, topic, true)
	if len(all) <= len(committed) {
		t.Errorf("changelog holds %d records, %d of them committed: the dropped member's batch was not refused", len(all), len(committed))
	}
	// The refusal shows in the rebalance that follows the drop: the worker
	// applies the batch again without restarting its consumer.
	if !lines.has("batch failed; applying it again from the committed offsets") || lines.has("stream job failed; retrying") {
		t.Errorf("the refused batch was not applied again in place; logged %q", lines.all())
	}
}

// logLines records the messages logged, for tests of which way a failure
// went.
type logLines struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logLines) Enabled(context.Context, slog.Level) bool { return true }

func (l *logLines) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Message)
	return nil
}

func (l *logLines) WithAttrs([]slog.Attr) slog.Handler { return l }

func (l *logLines) WithGroup(string) slog.Handler { return l }

func (l *logLines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.msgs)
}

func (l *logLines) has(msg string) bool { return l.count(msg) > 0 }

func (l *logLines) count(msg string) int {
	n := 0
	for _, m := range l.all() {
		if m == msg {
			n++
		}
	}
	return n
}

// TestFailedBatchIsAppliedAgainInTheGroup fails one batch's transaction,
// once and then maxRewinds+2 times in a row. After a failure the worker
// applies the records again from the offsets its store committed, as the
// same group member (leaving and joining again would stop every worker for
// two rebalances); after maxRewinds of them in a row it restarts its
// consumer, joining the group again, and the new consumer rewinds afresh.
// Either way each event counts once.
func TestFailedBatchIsAppliedAgainInTheGroup(t *testing.T) {
	for _, tc := range []struct {
		failures, restarts int
	}{
		{1, 0},
		{maxRewinds + 2, 1},
	} {
		t.Run(fmt.Sprintf("%d failures", tc.failures), func(t *testing.T) {
			e, reg, manual := newTestEngine(t, clicksRepo)
			_, cv, _ := layout(t, reg, "user_clicks")
			lines := &logLines{}
			e.job.logger = slog.New(lines)
			// Armed once the first records are applied, the hook fails
			// the next tc.failures transactions.
			var fences, left atomic.Int32
			testHookBeforeFence = func() error {
				fences.Add(1)
				if left.Add(-1) >= 0 {
					return errors.New("injected: the broker did not answer")
				}
				return nil
			}
			t.Cleanup(func() { testHookBeforeFence = nil })
			runEngine(t, e)
			produce := func(from int) {
				t.Helper()
				recs := clickRecords(from, 3)
				for _, r := range recs {
					r.Partition = 0
				}
				if err := manual.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			applied := func(next int64) {
				t.Helper()
				err := testkit.Eventually(t.Context(), 30*time.Second, func() error {
					if off := committedOffset(t, e); off != next {
						return fmt.Errorf("store at offset %d, want %d", off, next)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			member := func() string {
				t.Helper()
				m := e.member.Load()
				if m == nil {
					t.Fatal("the engine is in no group")
				}
				id, generation := m.cl.GroupMetadata()
				return fmt.Sprintf("%s generation %d", id, generation)
			}
			produce(0)
			applied(3)
			before, first := member(), fences.Load()
			left.Store(int32(tc.failures))
			produce(3)
			applied(6)
			if n := int(fences.Load() - first); n < tc.failures+1 {
				t.Errorf("%d transactions, want %d failed and one more", n, tc.failures)
			}
			if n := clickCount(t, e, cv); n != 6 {
				t.Errorf("count %d, want 6", n)
			}
			if after := member(); (after != before) != (tc.restarts > 0) {
				t.Errorf("member %s before the failures, %s after; want rejoined %v", before, after, tc.restarts > 0)
			}
			if n := lines.count("stream job failed; retrying"); n != tc.restarts {
				t.Errorf("consumer restarted %d times, want %d", n, tc.restarts)
			}
		})
	}
}

// holdFirstFence makes the first transaction that reaches its fence wait
// until free is called; entered closes when it does. Tests defer free, so
// that it runs before the engine stops.
func holdFirstFence(t *testing.T) (entered <-chan struct{}, free func()) {
	in, release := make(chan struct{}), make(chan struct{})
	var once, released sync.Once
	testHookBeforeFence = func() error {
		once.Do(func() {
			close(in)
			<-release
		})
		return nil
	}
	t.Cleanup(func() { testHookBeforeFence = nil })
	return in, func() { released.Do(func() { close(release) }) }
}

// dropMemberAtFence waits until a transaction (of what) holds at its fence
// (holdFirstFence), drops the engine's member from its group, gives the
// consumer the time to notice and to rejoin, were it free to, then lets
// the transaction go on.
func dropMemberAtFence(t *testing.T, e *Engine, entered <-chan struct{}, free func(), what string) {
	t.Helper()
	select {
	case <-entered:
	case <-time.After(20 * time.Second):
		t.Fatalf("no %s reached its commit", what)
	}
	dropMember(t, e)
	time.Sleep(3 * time.Second)
	free()
}

// dropMember removes the engine's consumer from its group, as the group
// coordinator does with a member whose session timed out.
func dropMember(t *testing.T, e *Engine) {
	t.Helper()
	m := e.member.Load()
	if m == nil {
		t.Fatal("the engine is in no group")
	}
	dropped, _ := m.cl.GroupMetadata()
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group = m.group
	member := kmsg.NewLeaveGroupRequestMember()
	member.MemberID = dropped
	leave.Members = append(leave.Members, member)
	resp, err := leave.RequestWith(t.Context(), e.producer)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestBackfillOfADroppedMemberIsRefused drops the engine's member from its
// group while a backfill waits to commit its first transaction. The
// backfill must be refused, as a batch is, since the partitions' next
// owner backfills them too; the engine builds them again once it is given
// them back, counting every event once.
func TestBackfillOfADroppedMemberIsRefused(t *testing.T) {
	e, reg, _ := newTestEngine(t, clicksRepo)
	_, cv, _ := layout(t, reg, "user_clicks")
	ts := time.Now().Add(-time.Minute).UnixMicro()
	const n = 5
	var rows []offline.Row
	for i := range n {
		rows = append(rows, offline.Row{Values: []any{"u", ts + int64(i)}, Key: "u", EventID: fmt.Sprintf("b%d", i),
			EventTime: ts + int64(i), Arrival: ts + int64(i), Partition: 0, Offset: int64(i)})
	}
	e.history = func(_ context.Context, _ string, _ *schemas.Schema, fn func(*offline.Row) error) (map[int32]int64, error) {
		for i := range rows {
			if err := fn(&rows[i]); err != nil {
				return nil, err
			}
		}
		return map[int32]int64{0: n}, nil
	}
	entered, free := holdFirstFence(t)
	defer free() // before the engine stops, should the test fail first
	runEngine(t, e)
	dropMemberAtFence(t, e, entered, free, "backfill")
	err := testkit.Eventually(t.Context(), 30*time.Second, func() error {
		offs, err := e.store.Offsets(viewKey(cv))
		if err != nil || offs[0] != n {
			return fmt.Errorf("offsets %v, %v: want the history backfilled", offs, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := clickCount(t, e, cv); got != n {
		t.Errorf("count %d, want %d", got, n)
	}
	topic := kafka.ChangelogTopic("user_clicks")
	all, committed := changelogRecords(t, e, topic, false), changelogRecords(t, e, topic, true)
	if len(all) <= len(committed) {
		t.Errorf("changelog holds %d records, %d of them committed: want the refused backfill's records aborted", len(all), len(committed))
	}
	seen := map[string]int{}
	for _, k := range committed {
		seen[k]++
	}
	for k, c := range seen {
		if c > 1 {
			t.Errorf("changelog key %q committed %d times, want once", k, c)
		}
	}
}
