package acceptance

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/testkit"
)

// TestKillNineTwentyTimes kills a node with SIGKILL at random moments while
// producers send, restarts it on the same data dir each time, and re-sends
// what was not acknowledged. Whenever every sent batch has been
// acknowledged, the served features equal the oracle over exactly the
// acknowledged events; at the end Parquet holds each of them exactly once.
func TestKillNineTwentyTimes(t *testing.T) {
	const kills = 20
	seed := uint64(time.Now().UnixNano()) % 1_000_000_000
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 9))
	now := time.Now().UTC()
	q := newBatchQueue(r, uniqueTimes(makeTxns(seed, 60000, 5, now.Add(-20*time.Hour), now.Add(-time.Minute))), 100)

	node := testkit.NewNode(t, "--repo", "testdata/repo")
	node.Start()
	view := testView(t)
	ats := []time.Time{now, now.Add(-3 * time.Hour)}
	midRequest, cut, checks := 0, 0, 0
	for kill := range kills {
		// Every other round first makes the acknowledged set whole and
		// checks it; the others kill soon after the restart, while the node
		// may still be catching up.
		if kill%2 == 1 {
			checkAcked(t, node, q, view, ats)
			checks++
		}
		stop := q.produce(t, node.URL(), 3)
		time.Sleep(time.Duration(50+r.IntN(551)) * time.Millisecond)
		if n := int(q.inflight.Load()); n > 0 {
			midRequest++
			cut += n
		}
		node.Kill()
		stop()
		node.Start()
	}
	checkAcked(t, node, q, view, ats)
	checks++
	events := q.ackedEvents()
	checkParquetOnce(t, node, events)
	t.Logf("%d kills, %d with requests in flight (%d requests in all); %d checks; %d events acknowledged in %d requests",
		kills, midRequest, cut, checks, len(events), q.posts.Load())
	if midRequest == 0 {
		t.Error("no kill landed while a request was in flight; the test proves little")
	}
	node.Stop()
}

// uniqueTimes moves events so that no two of one user share an event time:
// ties would need Kafka offsets to break, which the oracle does not know.
func uniqueTimes(events []txn) []txn {
	used := map[string]map[int64]bool{}
	for i := range events {
		e := &events[i]
		if used[e.User] == nil {
			used[e.User] = map[int64]bool{}
		}
		for used[e.User][e.Time.UnixMilli()] {
			e.Time = e.Time.Add(time.Millisecond)
		}
		used[e.User][e.Time.UnixMilli()] = true
	}
	return events
}

// checkAcked re-sends every unacknowledged batch until the node
// acknowledges it, so the events the node holds are exactly the
// acknowledged ones, then waits until the served features equal the
// oracle's over them.
func checkAcked(t *testing.T, node *testkit.Node, q *batchQueue, view *featurestore.View, ats []time.Time) {
	t.Helper()
	ctx := t.Context()
	q.resendUnacked(t, node.URL())
	events := q.ackedEvents()
	for _, at := range ats {
		err := testkit.Eventually(ctx, 30*time.Second, func() error {
			resp, err := features(ctx, node.URL(), users, at)
			if err != nil {
				return err
			}
			return compareToOracle(t, resp, view, users, events, at)
		})
		if err != nil {
			t.Fatalf("after a restart, over %d acknowledged events, at %s: %v\nlog:\n%s", len(events), at.Format(time.RFC3339Nano), err, node.Log())
		}
	}
}

// checkParquetOnce waits until Parquet holds every event exactly once and
// nothing else.
func checkParquetOnce(t *testing.T, node *testkit.Node, events []txn) {
	t.Helper()
	err := testkit.Eventually(t.Context(), 30*time.Second, func() error {
		rows, _, err := readParquet(node.DataDir)
		if err != nil {
			return err
		}
		ids := countIDs(rows)
		var missing, twice []string
		for _, e := range events {
			switch n := ids[e.ID]; {
			case n == 0:
				missing = append(missing, e.ID)
			case n > 1:
				twice = append(twice, fmt.Sprintf("%s (%d times)", e.ID, n))
			}
		}
		if len(rows) != len(events) || len(missing)+len(twice) > 0 {
			slices.Sort(missing)
			return fmt.Errorf("parquet: %d rows for %d events; %d missing %v, %d more than once %v",
				len(rows), len(events), len(missing), missing[:min(len(missing), 5)], len(twice), twice[:min(len(twice), 5)])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

type batchState uint8

const (
	untried batchState = iota
	unacked            // sent at least once, never acknowledged
	acked
)

// batchQueue hands batches to producers: unacknowledged ones first, then
// new ones, then, once all were sent, acknowledged ones again (duplicates).
type batchQueue struct {
	mu      sync.Mutex
	r       *rand.Rand // its own: producers draw from it concurrently with the test
	batches [][]txn
	state   []batchState
	busy    []bool

	inflight atomic.Int32 // requests under way
	posts    atomic.Int32 // requests acknowledged
}

// newBatchQueue splits events into batches of size; one event in twenty is
// also sent in a later batch and one in fifty twice in its own.
func newBatchQueue(r *rand.Rand, events []txn, size int) *batchQueue {
	q := &batchQueue{r: rand.New(rand.NewPCG(r.Uint64(), r.Uint64()))}
	for len(events) > 0 {
		n := min(size, len(events))
		q.batches = append(q.batches, slices.Clone(events[:n]))
		events = events[n:]
	}
	for b := range q.batches {
		for _, e := range q.batches[b] {
			switch r.IntN(100) {
			case 0, 1:
				q.batches[b] = append(q.batches[b], e)
			case 2, 3, 4, 5, 6:
				to := b + r.IntN(len(q.batches)-b)
				q.batches[to] = append(q.batches[to], e)
			}
		}
	}
	q.state = make([]batchState, len(q.batches))
	q.busy = make([]bool, len(q.batches))
	return q
}

// take picks the next batch to send and marks it busy; -1 when it picked a
// busy one.
func (q *batchQueue) take() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	pick := -1
	for _, want := range []batchState{unacked, untried} {
		for i := range q.batches {
			if pick < 0 && q.state[i] == want && !q.busy[i] {
				pick = i
			}
		}
	}
	if pick < 0 {
		pick = q.r.IntN(len(q.batches)) // everything was sent: send duplicates
		if q.busy[pick] {
			return -1
		}
	}
	q.busy[pick] = true
	return pick
}

// send posts batch i once and records whether it was acknowledged.
func (q *batchQueue) send(t *testing.T, url string, i int) bool {
	var lines [][]byte
	for _, e := range q.batches[i] {
		lines = append(lines, e.json())
	}
	q.inflight.Add(1)
	code, res, err := post(url, lines)
	q.inflight.Add(-1)
	ok := err == nil && code == http.StatusOK
	if ok && (res.Accepted != len(lines) || len(res.Rejected) > 0) {
		t.Errorf("batch %d: accepted %d of %d, rejected %+v", i, res.Accepted, len(lines), res.Rejected)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.busy[i] = false
	switch {
	case ok:
		q.state[i] = acked
		q.posts.Add(1)
	case q.state[i] == untried:
		q.state[i] = unacked
	}
	return ok
}

// produce starts conns producers that send batches until the returned stop
// is called; stop waits for them.
func (q *batchQueue) produce(t *testing.T, url string, conns int) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if i := q.take(); i >= 0 {
					q.send(t, url, i)
				}
				time.Sleep(5 * time.Millisecond) // a steady stream, not a flood
			}
		})
	}
	return func() { close(done); wg.Wait() }
}

// resendUnacked sends every unacknowledged batch until it is acknowledged;
// no producer may run meanwhile.
func (q *batchQueue) resendUnacked(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for i := range q.batches {
		q.mu.Lock()
		pending := q.state[i] == unacked
		q.mu.Unlock()
		for pending && !q.send(t, url, i) {
			if time.Now().After(deadline) {
				t.Fatalf("batch %d still unacknowledged after 30s", i)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// ackedEvents returns the events of acknowledged batches, each once.
func (q *batchQueue) ackedEvents() []txn {
	q.mu.Lock()
	defer q.mu.Unlock()
	seen := map[string]bool{}
	var out []txn
	for i, b := range q.batches {
		if q.state[i] != acked {
			continue
		}
		for _, e := range b {
			if !seen[e.ID] {
				seen[e.ID] = true
				out = append(out, e)
			}
		}
	}
	return out
}
