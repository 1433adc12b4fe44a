package acceptance

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/featurestore/window"
	"github.com/sluicehq/sluice/serve"
	"github.com/sluicehq/sluice/testkit"
)

// TestServedValuesEqualOracle sends random event sets (out of order, hours
// late, duplicated within and across requests, with null fields) through a
// node over HTTP and kcat, then checks every feature of a view that uses
// every aggregation against the oracle, at many times: random ones, event
// times and a microsecond either side, window tails and ttls meeting events,
// hop boundaries, and now.
func TestServedValuesEqualOracle(t *testing.T) {
	node := testkit.NewNode(t, "--repo", "testdata/allaggs")
	node.Start()
	repo, err := featurestore.ParseDir("testdata/allaggs")
	if err != nil {
		t.Fatal(err)
	}
	view := repo.Views["acts"]
	var all []act
	for _, seed := range propertySeeds(t) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { all = append(all, checkSeed(t, node, view, seed)...) })
	}
	if !t.Failed() { // a failed seed returned no events
		checkOffline(t, node, all)
		checkDataset(t, node, view, all)
	}
	node.Stop()
}

// actRow is the part of an activity Parquet row the test checks.
type actRow struct {
	EventID   string `parquet:"_event_id"`
	UserID    string `parquet:"user_id"`
	Partition int32  `parquet:"_partition"`
}

// checkOffline waits until Parquet holds every event once, duplicates
// removed, and checks that HTTP and kcat put each user in one partition.
func checkOffline(t *testing.T, node *testkit.Node, events []act) {
	t.Helper()
	var rows []actRow
	err := testkit.Eventually(t.Context(), 30*time.Second, func() error {
		files, err := filepath.Glob(filepath.Join(node.DataDir, "offline", "streams", "activity", "date=*", "part-*.parquet"))
		if err != nil {
			return err
		}
		rows = rows[:0]
		for _, f := range files {
			rs, err := parquet.ReadFile[actRow](f)
			if err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			rows = append(rows, rs...)
		}
		if len(rows) != len(events) {
			return fmt.Errorf("parquet holds %d rows of the activity stream, want %d (one per event)", len(rows), len(events))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int{}
	partitions := map[string]map[int32]bool{}
	for _, r := range rows {
		ids[r.EventID]++
		if partitions[r.UserID] == nil {
			partitions[r.UserID] = map[int32]bool{}
		}
		partitions[r.UserID][r.Partition] = true
	}
	for _, e := range events {
		if e.WithID && ids[e.ID] != 1 {
			t.Errorf("event %s is in parquet %d times, want 1", e.ID, ids[e.ID])
		}
	}
	for u, ps := range partitions {
		if len(ps) != 1 {
			t.Errorf("events of %s are in partitions %v; HTTP and kcat (murmur2) must pick the same one", u, slices.Sorted(maps.Keys(ps)))
		}
	}
}

// propertySeeds returns the seeds to run: four fixed ones and a fresh one,
// or only SLUICE_PROPERTY_SEED when it is set.
func propertySeeds(t *testing.T) []uint64 {
	if s := os.Getenv("SLUICE_PROPERTY_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SLUICE_PROPERTY_SEED=%q: want an unsigned integer", s)
		}
		return []uint64{seed}
	}
	fresh := uint64(time.Now().UnixNano()) % 1_000_000_000
	t.Logf("fresh seed %d (run it alone with SLUICE_PROPERTY_SEED=%d)", fresh, fresh)
	return []uint64{1, 2, 3, 4, fresh}
}

// checkSeed sends one seed's events to the node (each seed has its own
// users) and compares the served features with the oracle; it returns the
// events.
func checkSeed(t *testing.T, node *testkit.Node, view *featurestore.View, seed uint64) []act {
	ctx := t.Context()
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	now := time.Now().UTC()
	from := now.Add(-20 * time.Hour)
	var users []string
	for i := range 7 {
		users = append(users, fmt.Sprintf("s%d-u%d", seed, i))
	}
	events := genActs(r, seed, 1000, users, from, now.Add(-2*time.Minute))
	plan := planSends(r, events)
	sendPlan(t, node, plan)
	byUser := oracleByUser(events)

	// Caught up once lifetime aggregates and all see every event.
	err := testkit.Eventually(ctx, 30*time.Second, func() error {
		resp, err := readAll(ctx, node.URL(), users, now)
		if err != nil {
			return err
		}
		if errs := mismatches(resp, view, users, byUser, now); len(errs) > 0 {
			return fmt.Errorf("at %s, %d mismatches:\n%s", now.Format(time.RFC3339Nano), len(errs), strings.Join(errs[:min(len(errs), 30)], "\n"))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	times := queryTimes(r, events, view, from, now)
	failed := 0
	statuses := map[string]int{}
	for _, at := range times {
		resp, err := readAll(ctx, node.URL(), users, at)
		if err != nil {
			t.Fatalf("seed %d: read at %s: %v", seed, at.Format(time.RFC3339Nano), err)
		}
		for _, col := range resp.Results[1:] {
			for _, s := range col.Statuses {
				statuses[s]++
			}
		}
		if errs := mismatches(resp, view, users, byUser, at); len(errs) > 0 {
			t.Errorf("seed %d: at %s, %d mismatches:\n%s", seed, at.Format(time.RFC3339Nano), len(errs), strings.Join(errs[:min(len(errs), 10)], "\n"))
			if failed++; failed == 5 {
				t.FailNow()
			}
		}
	}
	for _, s := range []string{"PRESENT", "NULL_VALUE", "NOT_FOUND", "OUTSIDE_MAX_AGE"} {
		if statuses[s] == 0 {
			t.Errorf("seed %d: no read gave status %s (%v); the events do not exercise it", seed, s, statuses)
		}
	}
	before := time.Now()
	resp, err := readAll(ctx, node.URL(), users, time.Time{})
	after := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	if errs := mismatches(resp, view, users, byUser, before, after); len(errs) > 0 {
		t.Errorf("seed %d: at now, %d mismatches:\n%s", seed, len(errs), strings.Join(errs[:min(len(errs), 10)], "\n"))
	}
	t.Logf("seed %d: %d events in %d requests (%s), %d reads, statuses %v", seed, len(events), len(plan), planStats(plan), len(times)+1, statuses)
	return events
}

// planStats says what a plan sends.
func planStats(plan []sendBatch) string {
	kcat, records := 0, 0
	for _, b := range plan {
		records += len(b.events)
		if b.kcat {
			kcat++
		}
	}
	return fmt.Sprintf("%d by kcat, %d records", kcat, records)
}

// queryTimes picks the times to read at: random ones, event times and a
// microsecond either side, the last microsecond a window tail or ttl still
// includes an event and the first it does not, and hop boundaries.
func queryTimes(r *rand.Rand, events []act, view *featurestore.View, from, now time.Time) []time.Time {
	lo, hi := from.Add(-time.Hour).UnixMicro(), now.UnixMicro()
	var ts []int64
	for range 20 {
		ts = append(ts, lo+r.Int64N(hi-lo))
	}
	pick := func() int64 { return events[r.IntN(len(events))].Time.UnixMicro() }
	for range 8 {
		e := pick()
		ts = append(ts, e-1, e, e+1)
	}
	for _, f := range view.Features {
		for range 2 {
			e := pick()
			switch {
			case f.TTL > 0:
				ts = append(ts, e+f.TTL.Microseconds(), e+f.TTL.Microseconds()+1)
			case f.Window > 0:
				h := f.Hop
				if h == 0 {
					h = window.DefaultHop(f.Window)
				}
				// floor(t-w, h) <= e holds for t < floor(e, h) + h + w.
				edge := floorMicros(e, h.Microseconds()) + h.Microseconds() + f.Window.Microseconds()
				ts = append(ts, edge-1, edge)
			}
		}
	}
	for _, g := range timeGrids {
		b := floorMicros(lo+r.Int64N(hi-lo), g.Microseconds())
		ts = append(ts, b-1, b, b+1)
	}
	slices.Sort(ts)
	var out []time.Time
	for _, tu := range slices.Compact(ts) {
		if tu >= lo && tu <= hi {
			out = append(out, time.UnixMicro(tu).UTC())
		}
	}
	return out
}

// floorMicros rounds a down to a multiple of h (both positive).
func floorMicros(a, h int64) int64 { return a - a%h }

// act is one event of the activity stream of testdata/allaggs.
type act struct {
	ID     string
	User   string
	Kind   string         // "skip" fails the view's filter
	Time   time.Time      // microsecond precision
	Fields map[string]any // qty, amount, item, flag; nil is null
	WithID bool           // carries _event_id
	Omit   bool           // null fields are left out instead of sent as null
}

func (e act) json() []byte {
	m := map[string]any{"user_id": e.User, "kind": e.Kind, "ts": e.Time.UnixMicro()}
	for k, v := range e.Fields {
		if v != nil || !e.Omit {
			m[k] = v
		}
	}
	if e.WithID {
		m["_event_id"] = e.ID
	}
	b, _ := json.Marshal(m)
	return b
}

// oracleEvent is the event as the view sees it, with its derived fields
// computed here by hand; false when the view's filter drops it.
func (e act) oracleEvent() (testkit.OracleEvent, bool) {
	if e.Kind == "skip" {
		return testkit.OracleEvent{}, false
	}
	fields := map[string]any{}
	for k, v := range e.Fields {
		if v != nil {
			fields[k] = v
		}
	}
	if q, ok := e.Fields["qty"].(int64); ok {
		fields["big"] = q > 5
	}
	if a, ok := e.Fields["amount"].(float64); ok {
		fields["double_amount"] = a * 2
	}
	return testkit.OracleEvent{Fields: fields, Time: e.Time}, true
}

// Grids the generated event times snap to, so windows' tails and ttls meet
// events exactly.
var timeGrids = []time.Duration{time.Second, 5 * time.Minute, 10 * time.Minute, time.Hour}

// genActs makes n events of users[:len(users)-2] between from and to; the
// next-to-last user only sends events the filter drops, the last none. Event
// times are unique per user, so ties never need Kafka offsets to break them.
func genActs(r *rand.Rand, seed uint64, n int, users []string, from, to time.Time) []act {
	used := map[string]map[int64]bool{}
	out := make([]act, n)
	for i := range out {
		u := users[r.IntN(len(users)-1)]
		tu := from.UnixMicro() + r.Int64N(to.Sub(from).Microseconds())
		switch r.IntN(6) {
		case 0:
			tu = floorMicros(tu, timeGrids[r.IntN(len(timeGrids))].Microseconds())
		case 1:
			tu = floorMicros(tu, timeGrids[r.IntN(len(timeGrids))].Microseconds()) - 1
		}
		if used[u] == nil {
			used[u] = map[int64]bool{}
		}
		for used[u][tu] {
			tu++
		}
		used[u][tu] = true
		e := act{
			ID: fmt.Sprintf("s%d-%05d", seed, i), User: u, Kind: []string{"a", "b"}[r.IntN(2)],
			Time: time.UnixMicro(tu).UTC(), WithID: r.IntN(100) < 85, Omit: r.IntN(2) == 0,
			Fields: map[string]any{"qty": nil, "amount": nil, "item": nil, "flag": nil},
		}
		if r.IntN(10) == 0 || u == users[len(users)-2] {
			e.Kind = "skip"
		}
		if r.IntN(5) > 0 {
			e.Fields["qty"] = int64(r.IntN(16) - 3)
		}
		if r.IntN(5) > 0 {
			e.Fields["amount"] = float64(r.IntN(20000)-3000) / 100
		}
		if r.IntN(5) > 0 {
			e.Fields["item"] = fmt.Sprintf("i%02d", r.IntN(40))
		}
		if r.IntN(4) > 0 {
			e.Fields["flag"] = r.IntN(2) == 0
		}
		out[i] = e
	}
	return out
}

// sendBatch is one request: an HTTP post, or a kcat run.
type sendBatch struct {
	kcat   bool
	events []act
}

// planSends orders events mostly by time, shuffled locally, with one in ten
// sent late (after events hours newer), splits them into batches sent over
// HTTP or kcat, and re-sends some events that carry an id, in the same
// batch or a later one.
func planSends(r *rand.Rand, events []act) []sendBatch {
	byTime := slices.Clone(events)
	slices.SortFunc(byTime, func(a, b act) int { return a.Time.Compare(b.Time) })
	keys := make(map[string]float64, len(byTime))
	for i, e := range byTime {
		keys[e.ID] = float64(i) + r.Float64()*20
		if r.IntN(10) == 0 {
			keys[e.ID] = float64(i) + r.Float64()*float64(len(byTime)-i)
		}
	}
	slices.SortFunc(byTime, func(a, b act) int { return cmp.Compare(keys[a.ID], keys[b.ID]) })
	var plan []sendBatch
	for len(byTime) > 0 {
		n := min(1+r.IntN(50), len(byTime))
		plan = append(plan, sendBatch{kcat: r.IntN(10) < 3, events: slices.Clone(byTime[:n])})
		byTime = byTime[n:]
	}
	for b := range plan {
		for _, e := range plan[b].events {
			if !e.WithID || r.IntN(100) >= 12 {
				continue
			}
			to := b + r.IntN(len(plan)-b)
			plan[to].events = append(plan[to].events, e)
		}
	}
	return plan
}

// postStream sends events to a stream as NDJSON and returns the answer.
func postStream(url, stream string, lines [][]byte) (int, postResult, error) {
	body := bytes.Join(lines, []byte("\n"))
	resp, err := http.Post(url+"/v1/streams/"+stream+"/events", "application/x-ndjson", bytes.NewReader(body))
	if err != nil {
		return 0, postResult{}, err
	}
	defer resp.Body.Close()
	var res postResult
	if resp.StatusCode == http.StatusOK {
		err = json.NewDecoder(resp.Body).Decode(&res)
	}
	return resp.StatusCode, res, err
}

// sendPlan carries out a plan against the node.
func sendPlan(t *testing.T, node *testkit.Node, plan []sendBatch) {
	t.Helper()
	for i, b := range plan {
		var keys []string
		var lines [][]byte
		for _, e := range b.events {
			keys = append(keys, e.User)
			lines = append(lines, e.json())
		}
		if b.kcat {
			kcatProduce(t, node.BrokerAddr, "activity", keys, lines)
			continue
		}
		code, res, err := postStream(node.URL(), "activity", lines)
		if err != nil || code != http.StatusOK || res.Accepted != len(lines) || len(res.Rejected) > 0 {
			t.Fatalf("batch %d: post: code %d, %+v, %v", i, code, res, err)
		}
	}
}

// readAll reads every feature of the allaggs repo for users at t (now when
// t is zero).
func readAll(ctx context.Context, url string, users []string, at time.Time) (*serve.Response, error) {
	req := &serve.Request{FeatureService: "all", Entities: map[string][]serve.EntityValue{}}
	for _, u := range users {
		req.Entities["user_id"] = append(req.Entities["user_id"], serve.StringKey(u))
	}
	if !at.IsZero() {
		req.At = at.UTC().Format(time.RFC3339Nano)
	}
	return (&serve.Client{URL: url}).GetOnlineFeatures(ctx, req)
}

// oracleByUser dedupes events by id (the first copy wins; copies are equal)
// and applies the view's filter and derived fields.
func oracleByUser(events []act) map[string][]testkit.OracleEvent {
	byUser := map[string][]testkit.OracleEvent{}
	seen := map[string]bool{}
	for _, e := range events {
		if seen[e.ID] {
			continue
		}
		seen[e.ID] = true
		if oe, ok := e.oracleEvent(); ok {
			byUser[e.User] = append(byUser[e.User], oe)
		}
	}
	return byUser
}

// mismatches compares every feature the response holds with the oracle. A
// value passes when it equals the oracle's at any of ats (reads at now give
// two: just before and just after the request).
func mismatches(resp *serve.Response, view *featurestore.View, users []string, byUser map[string][]testkit.OracleEvent, ats ...time.Time) []string {
	var errs []string
	checked := 0
	for i, name := range resp.Metadata.FeatureNames {
		f := view.Feature(name)
		if f == nil {
			continue
		}
		checked++
		col := resp.Results[i]
		for row, u := range users {
			var wants []string
			ok := false
			for _, at := range ats {
				want := testkit.Oracle(*f, byUser[u], at, false)
				if matchesOracle(f.Agg, col, row, want) {
					ok = true
					break
				}
				wants = append(wants, fmt.Sprintf("%s (%s, %s) at %s", showValue(want.Value), want.Status, stamp(want.EventTime), at.Format(time.RFC3339Nano)))
			}
			if !ok {
				errs = append(errs, fmt.Sprintf("%s of %s: got %s (%s, %s), want %s", name, u,
					showValue(col.Values[row]), col.Statuses[row], col.EventTimestamps[row], strings.Join(wants, " or ")))
			}
		}
	}
	if checked != len(view.Features) {
		errs = append(errs, fmt.Sprintf("response holds %d of the %d features of %s: %v", checked, len(view.Features), view.Name, resp.Metadata.FeatureNames))
	}
	return errs
}

// matchesOracle compares one served value, status and event timestamp with the
// oracle's.
func matchesOracle(agg featurestore.Agg, col serve.Column, row int, want testkit.OracleResult) bool {
	ts, err := time.Parse(time.RFC3339Nano, col.EventTimestamps[row])
	if col.Statuses[row] != want.Status || err != nil || !ts.Equal(wantStamp(want.EventTime)) {
		return false
	}
	got := col.Values[row]
	switch w := want.Value.(type) {
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !sameScalar(g[i], w[i]) {
				return false
			}
		}
		return true
	case int64:
		if agg == window.ApproxDistinct {
			n, ok := got.(json.Number)
			g, err := n.Int64()
			return ok && err == nil && math.Abs(float64(g-w)) <= 0.02*float64(w)
		}
	}
	return sameScalar(got, want.Value)
}

// sameScalar compares a JSON-decoded value (numbers as json.Number) with an
// oracle value: integers exactly, floats within a relative 1e-9.
func sameScalar(got, want any) bool {
	n, isNum := got.(json.Number)
	switch w := want.(type) {
	case nil:
		return got == nil
	case int64:
		g, err := n.Int64()
		return isNum && err == nil && g == w
	case float64:
		g, err := n.Float64()
		return isNum && err == nil && (g == w || math.Abs(g-w) <= 1e-9*math.Max(math.Abs(g), math.Abs(w)))
	}
	return got == want
}

// wantStamp is the event timestamp the serving API reports for an event
// time: the Unix epoch when the value includes no event.
func wantStamp(t time.Time) time.Time {
	if t.IsZero() {
		return time.Unix(0, 0).UTC()
	}
	return t
}

func stamp(t time.Time) string { return wantStamp(t).UTC().Format(time.RFC3339Nano) }

func showValue(v any) string {
	if l, ok := v.([]any); ok {
		parts := make([]string, len(l))
		for i, x := range l {
			parts[i] = showValue(x)
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}
