package acceptance

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"testing"

	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/featurestore/window"
	"github.com/sluicehq/sluice/serve"
	"github.com/sluicehq/sluice/testkit"
	"github.com/sluicehq/sluice/train"
)

// spineRow is one row of the dataset test's spine.
type spineRow struct {
	user string
	at   time.Time
	// online: the row's time is after every event arrived, so the online
	// store's value at it must equal the training set's to the last bit.
	online bool
}

// checkDataset builds a training set with `sluice dataset build` from the
// node's offline store and checks it three ways: every value equals the
// oracle's at the row's time; rows at times after every event arrived
// equal what get-online-features serves with that `at` (online/offline
// consistency); and the node lists the dataset.
func checkDataset(t *testing.T, node *testkit.Node, view *featurestore.View, events []act) {
	t.Helper()
	byUser := oracleByUser(events)
	users := []string{"nobody"} // never seen
	lo, hi := events[0].Time, events[0].Time
	for _, e := range events {
		if !slices.Contains(users, e.User) {
			users = append(users, e.User)
		}
		lo, hi = minTime(lo, e.Time), maxTime(hi, e.Time)
	}
	r := rand.New(rand.NewPCG(7, 7))
	sent := time.Now().UTC() // every event has arrived
	var rows []spineRow
	for range 300 {
		at := lo.Add(-time.Hour).Add(time.Duration(r.Int64N(int64(hi.Sub(lo) + time.Hour))))
		if r.IntN(4) == 0 {
			at = events[r.IntN(len(events))].Time.Add(time.Duration(r.IntN(3)-1) * time.Microsecond)
		}
		rows = append(rows, spineRow{user: users[r.IntN(len(users))], at: at})
	}
	for i := range 40 {
		rows = append(rows, spineRow{user: users[i%len(users)], at: sent.Add(time.Duration(r.IntN(500)) * time.Millisecond), online: true})
	}
	dir := t.TempDir()
	spine := filepath.Join(dir, "spine.csv")
	var b strings.Builder
	b.WriteString("user_id,timestamp,row\n")
	for i, row := range rows {
		fmt.Fprintf(&b, "%s,%s,%d\n", row.user, row.at.Format(time.RFC3339Nano), i)
	}
	if err := os.WriteFile(spine, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "ds")
	cmd := exec.Command(node.Bin, "dataset", "build", "--data-dir", node.DataDir, "--server", node.URL(),
		"--spine", spine, "--service", "all", "--out", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sluice dataset build: %v\n%s", err, msg)
	}
	got := map[int][]any{}
	m, err := train.ReadRows(out, func(row []any) error {
		got[int(row[2].(int64))] = append([]any(nil), row...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.Rows != int64(len(rows)) || len(got) != len(rows) {
		t.Fatalf("dataset has %d rows (%d distinct), want %d", m.Rows, len(got), len(rows))
	}
	checkDatasetValues(t, node, view, m, rows, got, byUser)
	resp, err := http.Get(node.URL() + "/v1/datasets/" + m.ID)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v1/datasets/%s: %v %v, want the manifest", m.ID, resp, err)
	}
	if resp != nil {
		resp.Body.Close()
	}
}

func checkDatasetValues(t *testing.T, node *testkit.Node, view *featurestore.View, m train.Manifest, rows []spineRow, got map[int][]any, byUser map[string][]testkit.OracleEvent) {
	t.Helper()
	bad := 0
	report := func(format string, args ...any) {
		if bad++; bad <= 10 {
			t.Errorf(format, args...)
		}
	}
	for i, row := range rows {
		var served *serve.Response
		if row.online {
			var err error
			if served, err = readAll(t.Context(), node.URL(), []string{row.user}, row.at); err != nil {
				t.Fatal(err)
			}
		}
		for k, f := range view.Features {
			col := 3 + k
			if name := view.Name + "__" + f.Name; m.Columns[col].Name != name {
				t.Fatalf("column %d is %q, want %q", col, m.Columns[col].Name, name)
			}
			v := got[i][col]
			want := testkit.Oracle(f, byUser[row.user], row.at, false)
			if !datasetMatchesOracle(f.Agg, v, want.Value) {
				report("row %d (%s at %s): %s = %s, oracle %s", i, row.user, row.at.Format(time.RFC3339Nano), f.Name, showValue(v), showValue(want.Value))
			}
			if served != nil && !sameAsServed(v, served.Results[1+k].Values[0]) {
				report("row %d (%s at %s): %s = %s in the training set, %s online", i, row.user, row.at.Format(time.RFC3339Nano), f.Name, showValue(v), showValue(served.Results[1+k].Values[0]))
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d dataset values differ", bad)
	}
}

// datasetMatchesOracle compares a training-set value with the oracle's:
// floats within a relative 1e-9, approx_distinct within 2%.
func datasetMatchesOracle(agg featurestore.Agg, got, want any) bool {
	switch w := want.(type) {
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !datasetMatchesOracle("", g[i], w[i]) {
				return false
			}
		}
		return true
	case int64:
		g, ok := got.(int64)
		if agg == window.ApproxDistinct {
			return ok && math.Abs(float64(g-w)) <= 0.02*float64(w)
		}
		return ok && g == w
	case float64:
		if got == int64(0) && w == 0 {
			return true // the oracle knows no types: an empty int64 sum is 0.0 to it
		}
		g, ok := got.(float64)
		return ok && (g == w || math.Abs(g-w) <= 1e-9*math.Max(math.Abs(g), math.Abs(w)))
	}
	return got == want
}

// sameAsServed reports whether a training-set value is exactly the value
// served online (a JSON number, string, bool, list or null).
func sameAsServed(got, served any) bool {
	if l, ok := got.([]any); ok {
		s, ok := served.([]any)
		if !ok || len(s) != len(l) {
			return false
		}
		for i := range l {
			if !sameAsServed(l[i], s[i]) {
				return false
			}
		}
		return true
	}
	n, isNum := served.(json.Number)
	switch g := got.(type) {
	case int64:
		s, err := n.Int64()
		return isNum && err == nil && s == g
	case float64:
		s, err := n.Float64()
		return isNum && err == nil && s == g
	}
	return got == served
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
