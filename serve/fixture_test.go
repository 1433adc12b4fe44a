package serve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/featurestore/online"
	"github.com/sluicehq/sluice/featurestore/window"
	"github.com/sluicehq/sluice/schemas"
	"github.com/sluicehq/sluice/serve"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// repoYAML is the feature repository the tests serve: a string-keyed, a
// composite-keyed and an integer-keyed view over one stream.
const repoYAML = `
kind: entity
name: user
key: user_id
type: string
---
kind: entity
name: user_merchant
keys: [user_id, merchant_id]
---
kind: entity
name: account
key: account_id
type: int64
---
kind: stream
name: transactions
entity: user
timestamp: ts
timestamp_unit: ms
schema:
  - {name: txn_id, type: string}
  - {name: user_id, type: string}
  - {name: merchant_id, type: string}
  - {name: account_id, type: int64}
  - {name: amount, type: float64}
  - {name: ts, type: timestamp}
---
kind: feature_view
name: user_txn
entity: user
source: transactions
features:
  - {name: last_amount, field: amount, agg: last, ttl: 1d}
  - {name: txn_count_1h, agg: count, window: 1h}
  - {name: amount_sum_24h, field: amount, agg: sum, window: 24h}
  - {name: amount_mean_24h, field: amount, agg: mean, window: 24h}
  - {name: lifetime_count, agg: count}
---
kind: feature_view
name: pair_txn
entity: user_merchant
source: transactions
features:
  - {name: pair_count, agg: count}
  - {name: pair_last_amount, field: amount, agg: last}
---
kind: feature_view
name: account_txn
entity: account
source: transactions
features:
  - {name: account_count, agg: count}
---
kind: feature_service
name: fraud_v1
features: [user_txn:last_amount, user_txn:txn_count_1h, pair_txn:*]
`

// now is the serving clock of the tests.
var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// events are the stream's events, in offset order. u1 has events 30 days,
// 2 hours, 30 and 10 minutes old and one an hour in the future; u2 one event
// 3 days old (outside last_amount's 1-day ttl); "a|b"/"c" and "a"/"b|c" are
// composite keys that differ only in where '|' sits.
var events = []struct {
	user, merchant string
	account        int64
	amount         float64
	at             time.Duration // relative to now
}{
	{"u1", "m1", 7, 10, -30 * 24 * time.Hour},
	{"u1", "m2", 7, 20, -2 * time.Hour},
	{"u1", "m1", 7, 30, -30 * time.Minute},
	{"u1", "m1", 7, 40, -10 * time.Minute},
	{"u1", "m1", 7, 99, time.Hour},
	{"u2", "m1", 8, 5, -3 * 24 * time.Hour},
	{"a|b", "c", 9, 1, -time.Hour},
	{"a", "b|c", 9, 2, -time.Hour},
}

// memLog is an in-memory registry log.
type memLog struct {
	mu   sync.Mutex
	recs []featurestore.Record
	fail error // returned by Append when set
}

func (l *memLog) Append(_ context.Context, recs []featurestore.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail != nil {
		return l.fail
	}
	l.recs = append(l.recs, recs...)
	return nil
}

func (l *memLog) ReadAll(context.Context) ([]featurestore.Record, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.recs), nil
}

func (l *memLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.recs)
}

// fixture is a serving node over the test repository and events.
type fixture struct {
	log   *memLog
	reg   *featurestore.Registry
	store *online.Store
	srv   *httptest.Server
}

func newFixture(t *testing.T, opts serve.Options) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{log: &memLog{}}
	var err error
	if f.reg, err = featurestore.OpenRegistry(ctx, f.log, nil); err != nil {
		t.Fatalf("OpenRegistry: %v", err)
	}
	repo, err := featurestore.Parse(map[string][]byte{"f.yaml": []byte(repoYAML)})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if _, err := f.reg.Apply(ctx, repo, false); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if f.store, err = online.Open(t.TempDir(), online.Options{}); err != nil {
		t.Fatalf("online.Open: %v", err)
	}
	t.Cleanup(func() {
		if err := f.store.Close(); err != nil {
			t.Errorf("close online store: %v", err)
		}
	})
	fill(t, f.reg.Repo(), f.store)
	if opts.Now == nil {
		opts.Now = func() time.Time { return now }
	}
	mux := http.NewServeMux()
	serve.New(f.reg, f.store, opts).Register(mux)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// fill applies events to the store as the stream engine does: decode, run
// every view of the stream, put what passes; the offset orders ties.
func fill(t *testing.T, repo *featurestore.Repo, store *online.Store) {
	t.Helper()
	st := repo.Streams["transactions"]
	dec, err := schemas.NewDecoder(st.Schema)
	if err != nil {
		t.Fatalf("NewDecoder: %v", err)
	}
	var views []*featurestore.CompiledView
	for _, v := range repo.ViewsOf(st.Name) {
		cv, err := featurestore.Compile(repo, v.Name)
		if err != nil {
			t.Fatalf("Compile(%s): %v", v.Name, err)
		}
		views = append(views, cv)
	}
	b := store.NewBatch()
	defer b.Discard()
	type entity struct {
		cv  *featurestore.CompiledView
		key string
		st  *window.State
	}
	states := map[string]*entity{}
	for off, e := range events {
		at := now.Add(e.at)
		line := fmt.Sprintf(`{"txn_id": "t%d", "user_id": %q, "merchant_id": %q, "account_id": %d, "amount": %v, "ts": %d}`,
			off, e.user, e.merchant, e.account, e.amount, at.UnixMilli())
		ev, err := dec.Decode([]byte(line))
		if err != nil {
			t.Fatalf("decode %s: %v", line, err)
		}
		for _, cv := range views {
			key, values, pass := cv.Apply(ev)
			if !pass {
				continue
			}
			we := window.Event{Time: ev.Time, Arrival: at.Add(time.Second).UnixMicro(), Seq: int64(off), Values: values}
			if err := b.Put(cv.View.Name, cv.View.Version, key, &we, 0); err != nil {
				t.Fatalf("Put: %v", err)
			}
			ent := states[cv.View.Name+"\x00"+key]
			if ent == nil {
				ent = &entity{cv: cv, key: key, st: cv.Layout.NewState()}
				states[cv.View.Name+"\x00"+key] = ent
			}
			cv.Layout.Add(ent.st, &we, true)
		}
		if err := b.SetOffset(st.Name, 0, int64(off+1)); err != nil {
			t.Fatalf("SetOffset: %v", err)
		}
	}
	for _, ent := range states {
		if err := b.PutState(ent.cv.View.Name, ent.cv.View.Version, ent.key, ent.cv.Layout, ent.st, 0); err != nil {
			t.Fatalf("PutState: %v", err)
		}
	}
	if err := b.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// do sends a request and returns the status and body; it checks every
// answer is JSON.
func (f *fixture) do(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusMethodNotAllowed && !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	return resp.StatusCode, b
}

// features posts a request to /get-online-features.
func (f *fixture) features(t *testing.T, body string) (int, []byte) {
	t.Helper()
	return f.do(t, http.MethodPost, "/get-online-features", body)
}

// decodeJSON decodes b into a generic value (numbers as float64).
func decodeJSON(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// errorOf returns the "error" member of a JSON error answer.
func errorOf(t *testing.T, b []byte) string {
	t.Helper()
	var e struct {
		Error *string `json:"error"`
	}
	if err := json.Unmarshal(b, &e); err != nil || e.Error == nil {
		t.Fatalf("answer %s is not a JSON error (%v)", b, err)
	}
	return *e.Error
}

var errLogDown = errors.New("registry log unreachable")
