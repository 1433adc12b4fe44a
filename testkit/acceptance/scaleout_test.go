package acceptance

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/sluicehq/sluice/testkit"
)

// TestScaleOutWithReplica runs the fleet of DESIGN.md section 8 on one
// broker: an ingest node, three stream workers in one consumer group and a
// serve replica that builds its store from the changelogs. One worker is
// killed mid-stream; after the rebalance the replica serves the oracle's
// values.
func TestScaleOutWithReplica(t *testing.T) {
	addr, _, _ := startBroker(t)
	ingester := testkit.NewNode(t, "--role", "ingest", "--kafka.brokers", addr, "--repo", "testdata/repo")
	ingester.Start()
	var workers []*testkit.Node
	for range 3 {
		w := testkit.NewNode(t, "--role", "stream", "--kafka.brokers", addr)
		w.Start()
		workers = append(workers, w)
	}
	replica := testkit.NewNode(t, "--role", "serve", "--kafka.brokers", addr)
	replica.Start()

	now := time.Now().UTC()
	events := makeTxns(6, 3000, 12, now.Add(-6*time.Hour), now.Add(-time.Minute))
	send := func(from, to int) {
		for b := from; b < to; b += 100 {
			var lines [][]byte
			for _, e := range events[b:min(b+100, to)] {
				lines = append(lines, e.json())
			}
			if code, res, err := post(ingester.URL(), lines); err != nil || code != http.StatusOK || len(res.Rejected) > 0 {
				t.Fatalf("post: %d %+v %v", code, res, err)
			}
		}
	}
	send(0, 1500)
	workers[1].Kill()
	send(1500, len(events))

	var us []string
	for i := range 12 {
		us = append(us, fmt.Sprintf("u%03d", i))
	}
	view := testView(t)
	err := testkit.Eventually(t.Context(), 90*time.Second, func() error {
		resp, err := features(t.Context(), replica.URL(), us, now)
		if err != nil {
			return err
		}
		return compareToOracle(t, resp, view, us, events, now)
	})
	if err != nil {
		t.Fatalf("replica: %v\nworker 0 log:\n%s", err, workers[0].Log())
	}
	replica.Stop()
	workers[0].Stop()
	workers[2].Stop()
	ingester.Stop()
}
