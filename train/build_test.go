package train_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

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

// buildStore parses buildRepo and opens an offline store in a new
// directory.
func buildStore(t *testing.T) (*featurestore.Repo, string, *offline.Sink) {
	t.Helper()
	repo, err := featurestore.Parse(map[string][]byte{"r.yaml": []byte(buildRepo)})
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	sink, err := offline.Open(data, offline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return repo, data, sink
}

// TestBuildFromSpineStream makes every event of a stream a row at its own
// time: a row never sees its own event (nor one at the same time), and its
// label passes through.
func TestBuildFromSpineStream(t *testing.T) {
	repo, data, sink := buildStore(t)
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

// TestBuildInRuns builds the same training sets with the spine joined at
// once and in runs of a few rows, from a spine file and from a stream: the
// rows, the profile and the source offsets must not change.
func TestBuildInRuns(t *testing.T) {
	repo, data, sink := buildStore(t)
	schema := repo.Streams["txns"].Schema
	base := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 300 {
		user := fmt.Sprintf("u%d", r.IntN(6))
		ts := base + r.Int64N(48*3600)*1e6
		sink.Add(schema, offline.Row{
			Values: []any{user, float64(r.IntN(1000)) / 10, r.IntN(2) == 0, ts}, Key: user, EventID: fmt.Sprintf("e%d", i),
			EventTime: ts, Arrival: ts, Partition: int32(i % 2), Offset: int64(i / 2),
		})
	}
	if err := sink.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	var csv strings.Builder
	csv.WriteString("user_id,timestamp,label\n")
	for i := range 200 {
		at := time.UnixMicro(base + r.Int64N(50*3600)*1e6).UTC().Format(time.RFC3339)
		fmt.Fprintf(&csv, "u%d,%s,%d\n", r.IntN(8), at, i) // u6 and u7 have no history
	}
	spinePath := filepath.Join(t.TempDir(), "spine.csv")
	if err := os.WriteFile(spinePath, []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, src := range []struct {
		name string
		o    train.BuildOptions
		rows int64
	}{
		{"file", train.BuildOptions{SpineFile: spinePath}, 200},
		{"stream", train.BuildOptions{SpineStream: "txns", Label: "is_fraud"}, 300},
	} {
		build := func(spineRows int) (train.Manifest, [][]any, []byte) {
			o := src.o
			o.Repo, o.Features, o.OfflineDir, o.SpineRows = repo, []string{"u:*"}, data, spineRows
			o.Out = filepath.Join(t.TempDir(), "ds")
			var mu sync.Mutex
			var joined int64
			o.Progress = func(_, spine int64) {
				mu.Lock()
				joined = max(joined, spine)
				mu.Unlock()
			}
			m, err := train.Build(t.Context(), o)
			if err != nil {
				t.Fatal(err)
			}
			if joined != src.rows {
				t.Errorf("%s, runs of %d: progress reached %d spine rows, want %d", src.name, spineRows, joined, src.rows)
			}
			var rows [][]any
			if _, err := train.ReadRows(o.Out, func(row []any) error {
				rows = append(rows, slices.Clone(row))
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			profile, err := os.ReadFile(filepath.Join(o.Out, "profile.json"))
			if err != nil {
				t.Fatal(err)
			}
			return m, rows, profile
		}
		m1, rows1, prof1 := build(0)
		m2, rows2, prof2 := build(7)
		if m1.Rows != src.rows || m2.Rows != src.rows {
			t.Fatalf("%s: %d and %d rows, want %d", src.name, m1.Rows, m2.Rows, src.rows)
		}
		if diff := cmp.Diff(rows1, rows2); diff != "" {
			t.Errorf("%s: rows differ (-at once +in runs):\n%s", src.name, diff)
		}
		if !bytes.Equal(prof1, prof2) {
			t.Errorf("%s: profiles differ:\n%s\n%s", src.name, prof1, prof2)
		}
		if diff := cmp.Diff(m1.SourceOffsets, m2.SourceOffsets); diff != "" || m1.Spine != m2.Spine {
			t.Errorf("%s: manifests differ: spine %q and %q, offsets (-at once +in runs):\n%s", src.name, m1.Spine, m2.Spine, diff)
		}
	}
}
