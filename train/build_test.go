package train_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/featurestore/offline"
	"github.com/sluicehq/sluice/featurestore/window"
	"github.com/sluicehq/sluice/train"
)

const buildRepo = `
kind: entity
name: user
key: user_id
---
kind: stream
name: txns
entity: user
timestamp: ts
schema:
  - {name: user_id, type: string}
  - {name: amount, type: float64}
  - {name: is_fraud, type: bool, nullable: true}
  - {name: ts, type: timestamp}
---
kind: feature_view
name: u
entity: user
source: txns
features:
  - {name: n, agg: count}
  - {name: spent_1h, field: amount, agg: sum, window: 1h}
  - {name: last_amount, field: amount, agg: last}
`

// TestBuildFromSpineStream makes every event of a stream a row at its own
// time: a row never sees its own event (nor one at the same time), and its
// label passes through.
func TestBuildFromSpineStream(t *testing.T) {
	repo, err := featurestore.Parse(map[string][]byte{"r.yaml": []byte(buildRepo)})
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	sink, err := offline.Open(data, offline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	schema := repo.Streams["txns"].Schema
	base := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC).UnixMicro()
	// u1: amounts 1, 2, 4 at 0, 10 and 10 minutes (a tie); u2: 8 at 5.
	evs := []struct {
		user   string
		amount float64
		minute int64
		fraud  any
	}{{"u1", 1, 0, false}, {"u1", 2, 10, true}, {"u1", 4, 10, nil}, {"u2", 8, 5, false}}
	for i, e := range evs {
		ts := base + e.minute*60_000_000
		sink.Add(schema, offline.Row{
			Values: []any{e.user, e.amount, e.fraud, ts}, Key: e.user, EventID: fmt.Sprintf("e%d", i),
			EventTime: ts, Arrival: ts, Partition: 0, Offset: int64(i),
		})
	}
	if err := sink.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "ds")
	m, err := train.Build(t.Context(), train.BuildOptions{
		Repo: repo, Features: []string{"u:*"}, Mode: window.EventTime,
		SpineStream: "txns", Label: "is_fraud", OfflineDir: data, Out: out,
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	if _, err := train.ReadRows(out, func(row []any) error {
		// user_id, is_fraud, timestamp, u__n, u__spent_1h, u__last_amount
		key := fmt.Sprintf("%s@%d", row[0], (row[2].(int64)-base)/60_000_000)
		got[key] = fmt.Sprint(row[1], " ", row[3], " ", row[4], " ", row[5])
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"u1@0":  "false 0 0 <nil>",
		"u1@10": "<nil> 1 1 1", // both u1 rows at minute 10 see only the first event
		"u2@5":  "false 0 0 <nil>",
	}
	if len(got) != 3 || m.Rows != 4 {
		t.Fatalf("rows %v (manifest %d), want 4 rows at 3 (user, time)", got, m.Rows)
	}
	for k, w := range want {
		if k == "u1@10" {
			// Two rows share the key; either label, the same features.
			if g := got[k]; g != "<nil> 1 1 1" && g != "true 1 1 1" {
				t.Errorf("%s: %q, want a label and features 1 1 1", k, g)
			}
			continue
		}
		if got[k] != w {
			t.Errorf("%s: %q, want %q", k, got[k], w)
		}
	}
	if m.Spine != "stream:txns" || m.Label != "is_fraud" || m.SourceOffsets["txns"][0] != 4 || len(m.Features) != 3 {
		t.Errorf("manifest spine %q label %q offsets %v features %v", m.Spine, m.Label, m.SourceOffsets, m.Features)
	}
}
