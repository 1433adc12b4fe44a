package acceptance

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors/kafka"
	"github.com/sluicehq/sluice/serve"
	"github.com/sluicehq/sluice/testkit"
)

var users = []string{"u000", "u001", "u002", "u003", "u004", "u999"} // u999 never sends

// TestProducersChangeServedFeatures sends half the events over HTTP and half
// with kcat straight to the topic, then checks every served feature against
// the oracle, and the Parquet files against the events.
func TestProducersChangeServedFeatures(t *testing.T) {
	ctx := t.Context()
	node := testkit.NewNode(t, "--repo", "testdata/repo")
	node.Start()
	now := time.Now().UTC()
	events := makeTxns(1, 400, 5, now.Add(-3*time.Hour), now.Add(-time.Minute))
	http1, kcat1 := events[:200], events[200:]

	var lines [][]byte
	for _, e := range http1 {
		lines = append(lines, e.json())
	}
	code, res, err := post(node.URL(), lines)
	if err != nil || code != http.StatusOK || res.Accepted != len(http1) || len(res.Rejected) != 0 {
		t.Fatalf("post: code %d, %+v, %v", code, res, err)
	}
	var keys []string
	var values [][]byte
	for i := range kcat1 {
		kcat1[i].WithID = i%2 == 0 // half carry no id at all: the id comes from the offset
		keys = append(keys, kcat1[i].User)
		values = append(values, kcat1[i].json())
	}
	kcatProduce(t, node.BrokerAddr, "transactions", keys, values)

	view := testView(t)
	at := now
	err = testkit.Eventually(ctx, 30*time.Second, func() error {
		resp, err := features(ctx, node.URL(), users, at)
		if err != nil {
			return err
		}
		return compareToOracle(t, resp, view, users, events, at)
	})
	if err != nil {
		t.Fatalf("served features: %v\nlog:\n%s", err, node.Log())
	}
	// Reads at now agree too: every event is older than a minute.
	resp, err := features(ctx, node.URL(), users, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if err := compareLifetime(resp, users, events); err != nil {
		t.Fatal(err)
	}

	err = testkit.Eventually(ctx, 30*time.Second, func() error {
		rows, _, err := readParquet(node.DataDir)
		if err != nil {
			return err
		}
		if len(rows) != len(events) {
			return fmt.Errorf("parquet holds %d rows, want %d", len(rows), len(events))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rows, _, _ := readParquet(node.DataDir)
	ids := countIDs(rows)
	for _, e := range events {
		if !e.WithID {
			continue
		}
		if ids[e.ID] != 1 {
			t.Errorf("event %s is in parquet %d times, want 1", e.ID, ids[e.ID])
		}
	}
	node.Stop()
}

// compareLifetime checks lifetime_count of each user against the events
// that pass the view's filter.
func compareLifetime(resp *serve.Response, users []string, events []txn) error {
	i := slices.Index(resp.Metadata.FeatureNames, "lifetime_count")
	if i < 0 {
		return fmt.Errorf("no lifetime_count in %v", resp.Metadata.FeatureNames)
	}
	for row, u := range users {
		want := 0
		for _, e := range events {
			if e.User == u && e.Amount > 0 {
				want++
			}
		}
		if got := resp.Results[i].Values[row]; !sameValue(got, int64(want)) {
			return fmt.Errorf("lifetime_count of %s at now = %v, want %d", u, got, want)
		}
	}
	return nil
}

// TestInvalidEvents checks that bad input is rejected naming the field, over
// HTTP, and parked in the dead-letter topic with its bytes and the error,
// from kcat, while the next valid record is still applied.
func TestInvalidEvents(t *testing.T) {
	ctx := t.Context()
	node := testkit.NewNode(t, "--repo", "testdata/repo")
	node.Start()
	now := time.Now().UTC()
	good := makeTxns(2, 3, 1, now.Add(-time.Hour), now.Add(-time.Minute))

	bad := []byte(`{"txn_id":"x1","user_id":"u000","merchant_id":"m1","amount":"12,5","country":null,"ts":1700000000000}`)
	code, res, err := post(node.URL(), [][]byte{good[0].json(), bad})
	if err != nil || code != http.StatusOK {
		t.Fatalf("post: %d %v", code, err)
	}
	if res.Accepted != 1 || len(res.Rejected) != 1 || res.Rejected[0].Index != 1 ||
		!strings.Contains(res.Rejected[0].Error, `"amount"`) {
		t.Fatalf("want event 1 rejected naming field amount, got %+v", res)
	}

	kbad := []byte(`{"txn_id":"x2","user_id":"u000","merchant_id":"m1","amount":3.5,"ts":"yesterday"}`)
	kcatProduce(t, node.BrokerAddr, "transactions",
		[]string{"u000", "u000", "u000"}, [][]byte{kbad, good[1].json(), good[2].json()})

	// The dead letter keeps the original bytes and says what was wrong.
	cl, err := kgo.NewClient(kgo.SeedBrokers(node.BrokerAddr), kgo.ConsumeTopics(kafka.DLQTopic("transactions")),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var dead *kgo.Record
	pollCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for dead == nil && pollCtx.Err() == nil {
		cl.PollFetches(pollCtx).EachRecord(func(r *kgo.Record) { dead = r })
	}
	if dead == nil {
		t.Fatalf("no record in %s; log:\n%s", kafka.DLQTopic("transactions"), node.Log())
	}
	if string(dead.Value) != string(kbad) {
		t.Errorf("dead letter value = %s, want the original %s", dead.Value, kbad)
	}
	hdr := map[string]string{}
	for _, h := range dead.Headers {
		hdr[h.Key] = string(h.Value)
	}
	if !strings.Contains(hdr[kafka.HeaderError], `"ts"`) || hdr[kafka.HeaderSourceTopic] != "transactions" ||
		hdr[kafka.HeaderSourceOffset] == "" || hdr[kafka.HeaderSourcePartition] == "" {
		t.Errorf("dead letter headers = %v, want the error naming ts and the source", hdr)
	}

	// Both valid kcat records after the bad one were applied.
	view := testView(t)
	err = testkit.Eventually(ctx, 30*time.Second, func() error {
		resp, err := features(ctx, node.URL(), []string{good[0].User}, now)
		if err != nil {
			return err
		}
		return compareToOracle(t, resp, view, []string{good[0].User}, good, now)
	})
	if err != nil {
		t.Fatal(err)
	}
	// The metrics count what happened: 3 valid events applied, 1 dead letter,
	// 1 rejected at ingest.
	metrics := scrape(t, node.URL())
	for _, want := range []string{
		`sluice_stream_events_total{outcome="applied",stream="transactions"} 3`,
		`sluice_stream_events_total{outcome="dead_letter",stream="transactions"} 1`,
		`sluice_ingest_events_rejected_total{stream="transactions"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	node.Stop()
}

// scrape returns the node's Prometheus metrics.
func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := io.Copy(&b, resp.Body); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestKillNineLosesNothing kills the node with SIGKILL twice while producers
// send, restarts it on the same data dir, and re-sends everything with the
// same ids: no acknowledged event is lost, none is counted twice online, and
// Parquet holds each exactly once.
func TestKillNineLosesNothing(t *testing.T) {
	ctx := t.Context()
	node := testkit.NewNode(t, "--repo", "testdata/repo")
	node.Start()
	now := time.Now().UTC()
	events := makeTxns(3, 6000, 5, now.Add(-20*time.Hour), now.Add(-time.Minute))
	const batch = 50

	var mu sync.Mutex
	acked := map[string]bool{}
	// send posts events[from:to] in batches from 4 connections; after
	// killAfter acknowledged batches it closes kill (once).
	send := func(from, to, killAfter int, kill chan struct{}) {
		var wg sync.WaitGroup
		batches := 0
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for b := from + w*batch; b < to; b += 4 * batch {
					var lines [][]byte
					end := min(b+batch, to)
					for _, e := range events[b:end] {
						lines = append(lines, e.json())
					}
					code, res, err := post(node.URL(), lines)
					if err != nil || code != http.StatusOK {
						continue // the node is down or shedding: not acknowledged
					}
					if res.Accepted != end-b {
						t.Errorf("batch %d: accepted %d of %d", b, res.Accepted, end-b)
					}
					mu.Lock()
					for _, e := range events[b:end] {
						acked[e.ID] = true
					}
					batches++
					if batches == killAfter {
						close(kill)
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	for round := range 2 {
		// Kill once a quarter of the round's batches were acknowledged,
		// while the other connections are mid-request.
		from, to := round*2000, (round+1)*2000
		kill, done := make(chan struct{}), make(chan struct{})
		go func() { send(from, to, 10, kill); close(done) }()
		<-kill
		node.Kill()
		<-done
		node.Start()
	}
	mu.Lock()
	nAcked := len(acked)
	mu.Unlock()
	if nAcked == 0 {
		t.Fatal("no batch was acknowledged before the kills; the test proves nothing")
	}
	// Every acknowledged event survived the crashes, offline and online.
	err := testkit.Eventually(ctx, 60*time.Second, func() error {
		rows, _, err := readParquet(node.DataDir)
		if err != nil {
			return err
		}
		ids := countIDs(rows)
		for id := range acked {
			if ids[id] != 1 {
				return fmt.Errorf("acknowledged event %s is in parquet %d times", id, ids[id])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("after kill -9: %v", err)
	}
	// Re-send everything, the acknowledged events included.
	send(0, len(events), -1, nil)
	view := testView(t)
	err = testkit.Eventually(ctx, 60*time.Second, func() error {
		resp, err := features(ctx, node.URL(), users, now)
		if err != nil {
			return err
		}
		return compareToOracle(t, resp, view, users, events, now)
	})
	if err != nil {
		t.Fatalf("online after re-send: %v", err)
	}
	err = testkit.Eventually(ctx, 60*time.Second, func() error {
		rows, _, err := readParquet(node.DataDir)
		if err != nil {
			return err
		}
		ids := countIDs(rows)
		var missing, twice []string
		for _, e := range events {
			switch ids[e.ID] {
			case 0:
				missing = append(missing, e.ID)
			case 1:
			default:
				twice = append(twice, e.ID)
			}
		}
		if len(rows) != len(events) || len(missing)+len(twice) > 0 {
			slices.Sort(missing)
			return fmt.Errorf("parquet: %d rows for %d events; %d missing, %d duplicated", len(rows), len(events), len(missing), len(twice))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d of %d events acknowledged before the re-send", nAcked, len(events))
	node.Stop()
}
