package pit_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/featurestore/offline"
	"github.com/sluicehq/sluice/featurestore/pit"
	"github.com/sluicehq/sluice/featurestore/window"
	"github.com/sluicehq/sluice/schemas"
)

// semanticsCase is one case of testdata/semantics.txt.
type semanticsCase struct {
	name     string
	line     int
	features []string
	events   []offline.Row
	rows     []semanticsRow
	want     []string
}

type semanticsRow struct {
	user, at string
	t        int64
	mode     window.Mode
}

const semanticsStream = `
kind: entity
name: user
key: user_id
---
kind: stream
name: s
entity: user
timestamp: ts
schema:
  - {name: user_id, type: string}
  - {name: v, type: float64, nullable: true}
  - {name: ts, type: timestamp}
---
kind: feature_view
name: w
entity: user
source: s
features:
`

// TestSemantics runs the hand-written cases of testdata/semantics.txt.
func TestSemantics(t *testing.T) {
	cases, err := readSemantics("testdata/semantics.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 5 {
		t.Fatalf("%d cases read", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			yaml := semanticsStream
			for _, f := range c.features {
				yaml += "  - " + f + "\n"
			}
			repo, err := featurestore.Parse(map[string][]byte{"r.yaml": []byte(yaml)})
			if err != nil {
				t.Fatalf("line %d: %v", c.line, err)
			}
			cv, err := featurestore.Compile(repo, "w")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, row := range c.rows {
				got = append(got, evalRow(t, cv, c.events, row))
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("testdata/semantics.txt:%d (-want +got):\n%s", c.line, diff)
			}
		})
	}
}

// evalRow joins one spine row and renders it as the file writes it.
func evalRow(t *testing.T, cv *featurestore.CompiledView, events []offline.Row, row semanticsRow) string {
	all := make([]int, len(cv.Specs))
	for i := range all {
		all[i] = i
	}
	history := func(_ context.Context, _ string, sc *schemas.Schema, workers int, cols pit.Columns, fn func(*offline.Batch) error) error {
		return feed(sc, events, workers, cols, fn)
	}
	q := pit.Query{Times: []int64{row.t}, Mode: row.mode, Views: []pit.View{{CV: cv, Which: all, Keys: []string{row.user}}}}
	res, err := pit.Run(t.Context(), q, history, pit.Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	head := row.user + " " + row.at
	if row.mode == window.AsServed {
		head += " as_served"
	}
	var parts []string
	for k, f := range cv.View.Features {
		parts = append(parts, f.Name+"="+render(res[0][k].Value(0)))
	}
	return head + " -> " + strings.Join(parts, " ")
}

func render(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case []any:
		var s []string
		for _, e := range x {
			s = append(s, render(e))
		}
		return "[" + strings.Join(s, " ") + "]"
	}
	return fmt.Sprint(v)
}

func readSemantics(path string) ([]semanticsCase, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var cases []semanticsCase
	var cur *semanticsCase
	expect := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		word, rest, _ := strings.Cut(line, " ")
		switch {
		case word == "case":
			cases = append(cases, semanticsCase{name: rest, line: n})
			cur, expect = &cases[len(cases)-1], false
		case cur == nil:
			return nil, fmt.Errorf("%s:%d: %q before any case", path, n, line)
		case expect:
			cur.want = append(cur.want, line)
		case line == "----":
			expect = true
		case word == "feature":
			cur.features = append(cur.features, rest)
		case word == "event":
			ev, err := parseEvent(rest, len(cur.events))
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, n, err)
			}
			cur.events = append(cur.events, ev)
		case word == "at":
			f := strings.Fields(rest)
			t, err := clock(f[1])
			if err != nil || len(f) > 3 {
				return nil, fmt.Errorf("%s:%d: want: at USER TIME [as_served]", path, n)
			}
			row := semanticsRow{user: f[0], at: f[1], t: t}
			if len(f) == 3 && f[2] == "as_served" {
				row.mode = window.AsServed
			}
			cur.rows = append(cur.rows, row)
		default:
			return nil, fmt.Errorf("%s:%d: unknown line %q", path, n, line)
		}
	}
	return cases, sc.Err()
}

// parseEvent reads "USER TIME [v=X|v=null] [arrival=TIME]".
func parseEvent(s string, offset int) (offline.Row, error) {
	f := strings.Fields(s)
	if len(f) < 2 {
		return offline.Row{}, fmt.Errorf("want: event USER TIME [v=X] [arrival=TIME]")
	}
	t, err := clock(f[1])
	if err != nil {
		return offline.Row{}, err
	}
	row := offline.Row{Key: f[0], EventID: fmt.Sprint("e", offset), EventTime: t, Arrival: t, Offset: int64(offset)}
	var v any
	for _, kv := range f[2:] {
		k, val, _ := strings.Cut(kv, "=")
		switch k {
		case "v":
			if val != "null" {
				x, err := strconv.ParseFloat(val, 64)
				if err != nil {
					return row, fmt.Errorf("v=%q: %w", val, err)
				}
				v = x
			}
		case "arrival":
			if row.Arrival, err = clock(val); err != nil {
				return row, err
			}
		default:
			return row, fmt.Errorf("unknown %q", kv)
		}
	}
	row.Values = []any{f[0], v, t}
	return row, nil
}

// clock reads a time of day on 2026-01-01 UTC: 10:00, 10:00:05 or
// 10:00:00.000001.
func clock(s string) (int64, error) {
	for _, layout := range []string{"15:04", "15:04:05", "15:04:05.999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			day := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			return day.Add(t.Sub(time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC))).UnixMicro(), nil
		}
	}
	return 0, fmt.Errorf("time %q: want HH:MM, HH:MM:SS or HH:MM:SS.ffffff", s)
}
