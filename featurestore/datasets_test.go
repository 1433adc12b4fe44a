package featurestore_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/featurestore"
)

// sliceLog is an in-memory registry log.
type sliceLog struct {
	mu   sync.Mutex
	recs []featurestore.Record
}

func (l *sliceLog) Append(_ context.Context, recs []featurestore.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, recs...)
	return nil
}

func (l *sliceLog) ReadAll(context.Context) ([]featurestore.Record, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.recs), nil
}

const oneView = `
kind: entity
name: user
key: user_id
---
kind: stream
name: clicks
entity: user
timestamp: ts
schema:
  - {name: user_id, type: string}
  - {name: ts, type: timestamp}
---
kind: feature_view
name: v
entity: user
source: clicks
features:
  - {name: n, agg: count}
`

// TestDatasetsLiveBesideDefinitions registers datasets, applies feature
// repositories (which must not remove them), and reopens the registry
// from its log.
func TestDatasetsLiveBesideDefinitions(t *testing.T) {
	log := &sliceLog{}
	reg, err := featurestore.OpenRegistry(t.Context(), log, nil)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := featurestore.Parse(map[string][]byte{"r.yaml": []byte(oneView)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Apply(t.Context(), repo, false); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{`{"id":"ds1","rows":3}`, `{"id":"ds2","rows":5}`} {
		if _, err := reg.RegisterDataset(t.Context(), []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	// An apply that changes the definitions keeps the datasets.
	changed, err := featurestore.Parse(map[string][]byte{"r.yaml": []byte(strings.Replace(oneView, "{name: n, agg: count}", "{name: n, agg: count, window: 1h}", 1))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Apply(t.Context(), changed, false); err != nil {
		t.Fatal(err)
	}
	reopened, err := featurestore.OpenRegistry(t.Context(), log, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*featurestore.Registry{reg, reopened} {
		want := map[string][]byte{"ds1": []byte(`{"id":"ds1","rows":3}`), "ds2": []byte(`{"id":"ds2","rows":5}`)}
		if diff := cmp.Diff(want, r.Datasets()); diff != "" {
			t.Errorf("datasets (-want +got):\n%s", diff)
		}
		if got := r.Repo().Views["v"].Features[0].Window; got == 0 {
			t.Error("the second apply was lost")
		}
	}
	for _, bad := range []string{`{"rows":1}`, `not json`, `{"id":"a/b"}`} {
		if _, err := reg.RegisterDataset(t.Context(), []byte(bad)); err == nil {
			t.Errorf("RegisterDataset(%s) took it", bad)
		}
	}
}
