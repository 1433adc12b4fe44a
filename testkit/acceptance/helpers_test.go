package acceptance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/serve"
	"github.com/sluicehq/sluice/testkit"
)

// txn is one test event of the transactions stream.
type txn struct {
	ID       string
	User     string
	Merchant string
	Amount   float64
	Country  *string
	Time     time.Time
	WithID   bool // carries _event_id in its JSON
}

func (e txn) json() []byte {
	m := map[string]any{
		"txn_id": e.ID, "user_id": e.User, "merchant_id": e.Merchant,
		"amount": e.Amount, "ts": e.Time.UnixMilli(),
	}
	if e.Country != nil {
		m["country"] = *e.Country
	} else {
		m["country"] = nil
	}
	if e.WithID {
		m["_event_id"] = e.ID
	}
	b, _ := json.Marshal(m)
	return b
}

// oracleEvent is how the oracle sees an event that passed the filter.
func (e txn) oracleEvent() testkit.OracleEvent {
	fields := map[string]any{"txn_id": e.ID, "user_id": e.User, "merchant_id": e.Merchant, "amount": e.Amount}
	if e.Country != nil {
		fields["country"] = *e.Country
	}
	return testkit.OracleEvent{Fields: fields, Time: e.Time.Truncate(time.Millisecond)}
}

// makeTxns generates n events of the given users between from and to.
func makeTxns(seed uint64, n, users int, from, to time.Time) []txn {
	r := rand.New(rand.NewPCG(seed, seed+1))
	countries := []string{"DE", "FR", "US"}
	out := make([]txn, n)
	span := to.Sub(from)
	for i := range out {
		e := txn{
			ID:       fmt.Sprintf("t%d-%06d", seed, i),
			User:     fmt.Sprintf("u%03d", r.IntN(users)),
			Merchant: fmt.Sprintf("m%02d", r.IntN(20)),
			Amount:   math.Round(r.Float64()*20000) / 100,
			Time:     from.Add(time.Duration(r.Int64N(int64(span)))).Truncate(time.Millisecond),
			WithID:   true,
		}
		if r.IntN(10) == 0 {
			e.Amount = -e.Amount // refunds: the view's filter drops them
		}
		if r.IntN(5) > 0 {
			c := countries[r.IntN(len(countries))]
			e.Country = &c
		}
		out[i] = e
	}
	return out
}

// postResult is the 200 answer of the ingest endpoint.
type postResult struct {
	Accepted int `json:"accepted"`
	Rejected []struct {
		Index int    `json:"index"`
		Error string `json:"error"`
	} `json:"rejected"`
}

// post sends events as NDJSON; it returns the status code and the answer.
func post(url string, lines [][]byte) (int, postResult, error) {
	body := bytes.Join(lines, []byte("\n"))
	resp, err := http.Post(url+"/v1/streams/transactions/events", "application/x-ndjson", bytes.NewReader(body))
	if err != nil {
		return 0, postResult{}, err
	}
	defer resp.Body.Close()
	var res postResult
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
			return resp.StatusCode, res, err
		}
	}
	return resp.StatusCode, res, nil
}

// kcatProduce writes key<TAB>value lines to a topic with kcat, using the
// murmur2 partitioner Java clients and Sluice use.
func kcatProduce(t *testing.T, broker, topic string, keys []string, values [][]byte) {
	t.Helper()
	kcat := testkit.RequireTool(t, "kcat")
	var in bytes.Buffer
	for i := range values {
		fmt.Fprintf(&in, "%s\t%s\n", keys[i], values[i])
	}
	cmd := exec.Command(kcat, "-b", broker, "-t", topic, "-P", "-K", "\t", "-X", "partitioner=murmur2_random")
	cmd.Stdin = &in
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
}

// features reads the user_txn features of users at t.
func features(ctx context.Context, url string, users []string, at time.Time) (*serve.Response, error) {
	req := &serve.Request{FeatureService: "fraud_v1", Entities: map[string][]serve.EntityValue{}}
	for _, u := range users {
		req.Entities["user_id"] = append(req.Entities["user_id"], serve.StringKey(u))
	}
	if !at.IsZero() {
		req.At = at.UTC().Format(time.RFC3339Nano)
	}
	c := &serve.Client{URL: url}
	return c.GetOnlineFeatures(ctx, req)
}

// testView returns the user_txn view of the test repository.
func testView(t *testing.T) *featurestore.View {
	t.Helper()
	repo, err := featurestore.ParseDir("testdata/repo")
	if err != nil {
		t.Fatal(err)
	}
	return repo.Views["user_txn"]
}

// compareToOracle checks every served feature of every user against the
// oracle over the events that pass the view's filter.
func compareToOracle(t *testing.T, resp *serve.Response, view *featurestore.View, users []string, events []txn, at time.Time) error {
	t.Helper()
	byUser := map[string][]testkit.OracleEvent{}
	for _, e := range events {
		if e.Amount > 0 {
			byUser[e.User] = append(byUser[e.User], e.oracleEvent())
		}
	}
	var errs []string
	for i, name := range resp.Metadata.FeatureNames {
		f := view.Feature(name)
		if f == nil {
			continue
		}
		col := resp.Results[i]
		for row, u := range users {
			want := testkit.Oracle(*f, byUser[u], at, false)
			got, status := col.Values[row], col.Statuses[row]
			if status != want.Status || !sameValue(got, want.Value) {
				errs = append(errs, fmt.Sprintf("%s of %s: got %v (%s), want %v (%s)", name, u, got, status, want.Value, want.Status))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d mismatches:\n%s", len(errs), strings.Join(errs, "\n"))
	}
	return nil
}

// sameValue compares a JSON-decoded value with an oracle value.
func sameValue(got, want any) bool {
	toF := func(v any) (float64, bool) {
		switch x := v.(type) {
		case float64:
			return x, true
		case int64:
			return float64(x), true
		case json.Number:
			f, err := x.Float64()
			return f, err == nil
		}
		return 0, false
	}
	if gf, ok := toF(got); ok {
		wf, ok := toF(want)
		return ok && math.Abs(gf-wf) <= 1e-9*math.Max(1, math.Abs(wf))
	}
	return fmt.Sprint(got) == fmt.Sprint(want)
}

// pqRow is the part of a Parquet row the tests check.
type pqRow struct {
	EventID string  `parquet:"_event_id"`
	UserID  string  `parquet:"user_id"`
	Amount  float64 `parquet:"amount"`
	Offset  int64   `parquet:"_offset"`
}

// readParquet reads every committed Parquet file of the transactions stream.
func readParquet(dataDir string) ([]pqRow, []string, error) {
	files, err := filepath.Glob(filepath.Join(dataDir, "offline", "streams", "transactions", "date=*", "part-*.parquet"))
	if err != nil {
		return nil, nil, err
	}
	var rows []pqRow
	for _, f := range files {
		rs, err := parquet.ReadFile[pqRow](f)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", f, err)
		}
		rows = append(rows, rs...)
	}
	return rows, files, nil
}

// countIDs counts rows per event id.
func countIDs(rows []pqRow) map[string]int {
	n := map[string]int{}
	for _, r := range rows {
		n[r.EventID]++
	}
	return n
}
