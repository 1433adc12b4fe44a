package acceptance

import (
	"fmt"
	"regexp"
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
	err := testkit.Eventually(t.Context(), 60*time.Second, func() error {
		rows, _, err := readParquet(node.DataDir)
		if err == nil && len(rows) != len(events) {
			err = fmt.Errorf("parquet holds %d of %d events", len(rows), len(events))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	changed := copyRepo(t, "  - {name: lifetime_count, agg: count}", "  - {name: lifetime_count, agg: count}\n  - {name: amount_min_2h, field: amount, agg: min, window: 2h}")
	if out, err := sluice(t, "apply", changed, "--server="+node.URL()); err != nil || !strings.Contains(out, "ready: every view has caught up") {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	// apply returns once the node is within its readiness bound; the
	// backfill of 300 rows may still be committing.
	re := regexp.MustCompile(`sluice_stream_backfilled_rows_total\{view="user_txn"\} (\S+)`)
	err = testkit.Eventually(t.Context(), 30*time.Second, func() error {
		m := re.FindStringSubmatch(scrape(t, node.URL()))
		if m == nil {
			return fmt.Errorf("no sluice_stream_backfilled_rows_total{view=\"user_txn\"}")
		}
		if n, _ := strconv.ParseFloat(m[1], 64); int(n) != len(events) {
			return fmt.Errorf("the new version took %v rows from the offline store, want %d", m[1], len(events))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, node.Log())
	}
	users := []string{"u000", "u001", "u002", "u003", "u004", "u005"}
	view := testView(t)
	view.Features = append(view.Features, view.Features[len(view.Features)-1])
	view.Features[len(view.Features)-1].Name, view.Features[len(view.Features)-1].Field = "amount_min_2h", "amount"
	view.Features[len(view.Features)-1].Agg, view.Features[len(view.Features)-1].Window = "min", 2*time.Hour
	at := time.Now().UTC()
	resp, err := features(t.Context(), node.URL(), users, at)
	if err != nil {
		t.Fatal(err)
	}
	if err := compareToOracle(t, resp, view, users, events, at); err != nil {
		t.Error(err)
	}
	node.Stop()
}
