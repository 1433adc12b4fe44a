package acceptance

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/testkit"
)

// TestNewViewVersionBackfillsFromParquet sends events to a node, waits until
// its offline store holds them, then applies a new version of the view: the
// new version must take every event from the Parquet history (counted in
// sluice_stream_backfilled_rows_total) and serve the oracle's values.
func TestNewViewVersionBackfillsFromParquet(t *testing.T) {
	node := testkit.NewNode(t, "--repo", "testdata/repo")
	node.Start()
	now := time.Now().UTC()
	events := makeTxns(11, 300, 6, now.Add(-3*time.Hour), now.Add(-time.Minute))
	var lines [][]byte
	for _, e := range events {
		lines = append(lines, e.json())
	}
	if code, res, err := post(node.URL(), lines); err != nil || code != 200 || res.Accepted != len(events) {
		t.Fatalf("post: %d %+v %v", code, res, err)
	}
	waitParquet(t, node.DataDir, len(events))
	changed := withMinFeature(t)
	if out, err := sluice(t, "apply", changed, "--server="+node.URL()); err != nil || !strings.Contains(out, "ready: every view has caught up") {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	checkBackfilled(t, node, node, events)
	node.Stop()
}

// TestBackfillBesideAnOfflineWorker runs the offline sink and the stream
// engine as separate processes on one data directory: a new view version
// on the stream worker takes its history from the Parquet files the
// offline worker committed.
func TestBackfillBesideAnOfflineWorker(t *testing.T) {
	addr, _, _ := startBroker(t)
	config := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(config, []byte("clickhouse: {managed: \"off\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ingester := testkit.NewNode(t, "--role", "ingest", "--kafka.brokers", addr, "--repo", "testdata/repo")
	ingester.Start()
	offliner := testkit.NewNode(t, "--role", "offline", "--kafka.brokers", addr, "--config", config)
	offliner.Start()
	streamer := testkit.NewNode(t, "--role", "stream", "--kafka.brokers", addr)
	streamer.DataDir = offliner.DataDir
	streamer.Start()
	now := time.Now().UTC()
	events := makeTxns(12, 200, 5, now.Add(-3*time.Hour), now.Add(-time.Minute))
	var lines [][]byte
	for _, e := range events {
		lines = append(lines, e.json())
	}
	if code, res, err := post(ingester.URL(), lines); err != nil || code != 200 || res.Accepted != len(events) {
		t.Fatalf("post: %d %+v %v", code, res, err)
	}
	waitParquet(t, offliner.DataDir, len(events))
	if out, err := sluice(t, "apply", withMinFeature(t), "--server="+streamer.URL()); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	checkBackfilled(t, streamer, streamer, events)
	streamer.Stop()
	offliner.Stop()
	ingester.Stop()
}

// waitParquet waits until the offline store of a data directory holds n
// events.
func waitParquet(t *testing.T, dataDir string, n int) {
	t.Helper()
	err := testkit.Eventually(t.Context(), 60*time.Second, func() error {
		rows, _, err := readParquet(dataDir)
		if err == nil && len(rows) != n {
			err = fmt.Errorf("parquet holds %d of %d events", len(rows), n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// withMinFeature is the test repository with a 2-hour min of amount added
// to user_txn: a new version of the view.
func withMinFeature(t *testing.T) string {
	return copyRepo(t, "  - {name: lifetime_count, agg: count}", "  - {name: lifetime_count, agg: count}\n  - {name: amount_min_2h, field: amount, agg: min, window: 2h}")
}

// checkBackfilled waits until the stream node's new version of user_txn
// took every event from the offline store (counted in
// sluice_stream_backfilled_rows_total), then requires the serving node's
// values to equal the oracle's.
func checkBackfilled(t *testing.T, streamNode, serveNode *testkit.Node, events []txn) {
	t.Helper()
	// apply returns once the node is within its readiness bound; the
	// backfill may still be committing.
	re := regexp.MustCompile(`sluice_stream_backfilled_rows_total\{view="user_txn"\} (\S+)`)
	err := testkit.Eventually(t.Context(), 30*time.Second, func() error {
		m := re.FindStringSubmatch(scrape(t, streamNode.URL()))
		if m == nil {
			return fmt.Errorf("no sluice_stream_backfilled_rows_total{view=\"user_txn\"}")
		}
		if n, _ := strconv.ParseFloat(m[1], 64); int(n) != len(events) {
			return fmt.Errorf("the new version took %v rows from the offline store, want %d", m[1], len(events))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, streamNode.Log())
	}
	var users []string
	for _, e := range events {
		if !slices.Contains(users, e.User) {
			users = append(users, e.User)
		}
	}
	view := testView(t)
	view.Features = append(view.Features, view.Features[len(view.Features)-1])
	view.Features[len(view.Features)-1].Name, view.Features[len(view.Features)-1].Field = "amount_min_2h", "amount"
	view.Features[len(view.Features)-1].Agg, view.Features[len(view.Features)-1].Window = "min", 2*time.Hour
	// The new version serves once it has caught up with the stream.
	err = testkit.Eventually(t.Context(), 30*time.Second, func() error {
		at := time.Now().UTC()
		resp, err := features(t.Context(), serveNode.URL(), users, at)
		if err != nil {
			return err
		}
		return compareToOracle(t, resp, view, users, events, at)
	})
	if err != nil {
		t.Error(err)
	}
}
