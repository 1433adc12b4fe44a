package acceptance

import (
	"encoding/csv"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/testkit"
)

// requireClickHouse skips (or, under RequireAll, fails) without a
// clickhouse-server binary for the node to manage.
func requireClickHouse(t *testing.T) {
	t.Helper()
	for _, p := range []string{"clickhouse-server", "/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"} {
		if _, err := exec.LookPath(p); err == nil {
			return
		}
	}
	testkit.RequireTool(t, "clickhouse-server")
}

// sqlCSV runs `sluice sql --format csv` and returns its records.
func sqlCSV(t *testing.T, server, query string) ([][]string, error) {
	t.Helper()
	out, err := sluice(t, "sql", "--server", server, "--format", "csv", query)
	if err != nil {
		return nil, fmt.Errorf("sluice sql: %v: %s", err, out)
	}
	return csv.NewReader(strings.NewReader(out)).ReadAll()
}

// TestClickHouseExactlyOnceAfterKills kills the node with SIGKILL twice
// during ingest, restarts it, re-sends everything with the same ids, and
// checks with `sluice sql` that the managed ClickHouse holds every event
// exactly once and that per-user counts and sums match the events posted.
func TestClickHouseExactlyOnceAfterKills(t *testing.T) {
	requireClickHouse(t)
	node := testkit.NewNode(t, "--repo", "testdata/repo", "--config", writeFlushConfig(t))
	node.Start()
	now := time.Now().UTC()
	events := makeTxns(7, 4000, 6, now.Add(-30*time.Hour), now.Add(-time.Minute))
	send := func(from, to int, kill chan struct{}) {
		var wg sync.WaitGroup
		var once sync.Once
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for b := from + w*50; b < to; b += 200 {
					var lines [][]byte
					for _, e := range events[b:min(b+50, to)] {
						lines = append(lines, e.json())
					}
					if code, _, err := post(node.URL(), lines); err == nil && code == http.StatusOK && kill != nil && b > from+400 {
						once.Do(func() { close(kill) })
					}
				}
			}()
		}
		wg.Wait()
	}
	for round := range 2 {
		kill, done := make(chan struct{}), make(chan struct{})
		go func() { send(round*2000, (round+1)*2000, kill); close(done) }()
		<-kill
		node.Kill()
		<-done
		node.Start()
	}
	send(0, len(events), nil)

	err := testkit.Eventually(t.Context(), 120*time.Second, func() error {
		rows, err := sqlCSV(t, node.URL(), "SELECT count(), uniqExact(_event_id) FROM sluice.transactions")
		if err != nil {
			return err
		}
		want := strconv.Itoa(len(events))
		if len(rows) != 2 || rows[1][0] != want || rows[1][1] != want {
			return fmt.Errorf("count(), distinct ids = %v, want %s each", rows, want)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%v\nlog:\n%s", err, node.Log())
	}
	// The Parquet files ClickHouse was loaded from hold each event once too.
	rows, _, err := readParquet(node.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	ids := countIDs(rows)
	for _, e := range events {
		if ids[e.ID] != 1 {
			t.Errorf("event %s is in parquet %d times, want 1", e.ID, ids[e.ID])
		}
	}
	if len(rows) != len(events) {
		t.Errorf("parquet holds %d rows, want %d", len(rows), len(events))
	}

	type agg struct {
		n   int
		sum float64
	}
	want := map[string]agg{}
	for _, e := range events {
		a := want[e.User]
		a.n++
		a.sum += e.Amount
		want[e.User] = a
	}
	sums, err := sqlCSV(t, node.URL(), "SELECT user_id, count(), sum(amount) FROM sluice.transactions GROUP BY user_id ORDER BY user_id")
	if err != nil {
		t.Fatal(err)
	}
	sums = sums[1:] // header
	users := make([]string, 0, len(want))
	for u := range want {
		users = append(users, u)
	}
	sort.Strings(users)
	if len(sums) != len(users) {
		t.Fatalf("%d users in ClickHouse, want %d: %v", len(sums), len(users), sums)
	}
	for i, u := range users {
		n, _ := strconv.Atoi(sums[i][1])
		sum, _ := strconv.ParseFloat(sums[i][2], 64)
		if sums[i][0] != u || n != want[u].n || math.Abs(sum-want[u].sum) > 1e-6*math.Abs(want[u].sum) {
			t.Errorf("row %v, want %s %d %.2f", sums[i], u, want[u].n, want[u].sum)
		}
	}
	node.Stop()
}

// writeFlushConfig writes a config that flushes Parquet every second, so
// rows reach ClickHouse sooner.
func writeFlushConfig(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(p, []byte("offline: {flush_interval: 1s}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
