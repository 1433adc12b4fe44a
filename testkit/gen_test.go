package testkit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/sluicehq/sluice/schemas"
)

var genStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// genEvents makes n events, one every 250ms and 3µs from genStart, so that
// the times carry sub-millisecond parts to be truncated.
func genEvents(g *FraudGen, n int) []map[string]any {
	out := make([]map[string]any, n)
	for i := range out {
		out[i] = g.Next(genStart.Add(time.Duration(i) * (250*time.Millisecond + 3*time.Microsecond)))
	}
	return out
}

func TestFraudGenDeterministic(t *testing.T) {
	a := genEvents(NewFraudGen(42, 1000, 200), 5000)
	b := genEvents(NewFraudGen(42, 1000, 200), 5000)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Fatalf("same seed, different events (-first +second):\n%s", diff)
	}
	c := genEvents(NewFraudGen(43, 1000, 200), 5000)
	same := 0
	for i := range a {
		if a[i]["user_id"] == c[i]["user_id"] && a[i]["amount"] == c[i]["amount"] {
			same++
		}
	}
	if same > 100 {
		t.Errorf("seeds 42 and 43 agree on user and amount in %d of %d events, want them to differ", same, len(a))
	}
}

func TestFraudGenSchema(t *testing.T) {
	sch := FraudSchema()
	g := NewFraudGen(7, 300, 50)
	evs := genEvents(g, 20000)
	nulls := map[string]int{}
	ids := map[string]bool{}
	for i, ev := range evs {
		if len(ev) != len(sch.Fields) {
			t.Fatalf("event %d has %d fields, want %d: %v", i, len(ev), len(sch.Fields), ev)
		}
		for _, f := range sch.Fields {
			v, ok := ev[f.Name]
			if !ok {
				t.Fatalf("event %d lacks field %q", i, f.Name)
			}
			if v == nil {
				if !f.Nullable {
					t.Fatalf("event %d: field %q is null but not nullable", i, f.Name)
				}
				nulls[f.Name]++
				continue
			}
			if err := checkType(f.Type, v); err != nil {
				t.Fatalf("event %d: field %q: %v", i, f.Name, err)
			}
		}
		id := ev["txn_id"].(string)
		if want := fmt.Sprintf("t%d", i+1); id != want {
			t.Fatalf("event %d: txn_id = %q, want %q", i, id, want)
		}
		if ids[id] {
			t.Fatalf("event %d: txn_id %q repeats", i, id)
		}
		ids[id] = true
		want := genStart.Add(time.Duration(i) * (250*time.Millisecond + 3*time.Microsecond)).Truncate(time.Millisecond)
		if ts := ev["ts"].(time.Time); !ts.Equal(want) || ts.Location() != time.UTC {
			t.Fatalf("event %d: ts = %v, want %v in UTC", i, ts, want)
		}
		if u := ev["user_id"].(string); len(u) != 6 || u[0] != 'u' || u > "u00300" {
			t.Fatalf("event %d: user_id %q outside u00001..u00300", i, u)
		}
		if m := ev["merchant_id"].(string); len(m) != 6 || m[0] != 'm' || m > "m00050" {
			t.Fatalf("event %d: merchant_id %q outside m00001..m00050", i, m)
		}
	}
	// The shares are loose bounds around the generator's rates; the events
	// are fixed by the seed, so these cannot flake.
	share := func(n int) float64 { return float64(n) / float64(len(evs)) }
	if s := share(nulls["country"]); s < 0.03 || s > 0.07 {
		t.Errorf("country is null in %.3f of events, want about 0.05", s)
	}
	if s := share(nulls["is_fraud"]); s < 0.15 || s > 0.25 {
		t.Errorf("is_fraud is null in %.3f of events, want about 0.2", s)
	}
}

func checkType(typ schemas.Type, v any) error {
	ok := false
	switch typ {
	case schemas.String:
		_, ok = v.(string)
	case schemas.Float64:
		_, ok = v.(float64)
	case schemas.Bool:
		_, ok = v.(bool)
	case schemas.Timestamp:
		_, ok = v.(time.Time)
	}
	if !ok {
		return fmt.Errorf("value %v of Go type %T is not a %s", v, v, typ)
	}
	return nil
}

func TestFraudGenDistribution(t *testing.T) {
	evs := genEvents(NewFraudGen(1, 1000, 200), 100000)
	var fraud, labelled, big, refunds int
	perUser := map[string]int{}
	for _, ev := range evs {
		perUser[ev["user_id"].(string)]++
		a := ev["amount"].(float64)
		if a == 0 {
			t.Fatalf("amount is 0 in %v", ev)
		}
		if a > 1000 {
			big++
		}
		if a < 0 {
			refunds++
		}
		if f, ok := ev["is_fraud"].(bool); ok {
			labelled++
			if f {
				fraud++
			}
		}
	}
	n := float64(len(evs))
	if s := float64(fraud) / float64(labelled); s < 0.006 || s > 0.015 {
		t.Errorf("fraud share of labelled events = %.4f, want about 0.01", s)
	}
	if s := float64(big) / n; s < 0.002 || s > 0.01 {
		t.Errorf("share of amounts over 1000 = %.4f, want rare but present", s)
	}
	if s := float64(refunds) / n; s < 0.01 || s > 0.03 {
		t.Errorf("refund share = %.4f, want about 0.02", s)
	}
	// Skew: the busiest user makes far more transactions than the median.
	if len(perUser) < 900 {
		t.Errorf("%d of 1000 users made a transaction, want nearly all", len(perUser))
	}
	busiest := perUser["u00001"]
	median := perUser[fmt.Sprintf("u%05d", 500)]
	if busiest < 10*median {
		t.Errorf("u00001 made %d transactions and u00500 %d, want u00001 at least 10 times busier", busiest, median)
	}
}

func TestFraudGenJSON(t *testing.T) {
	g := NewFraudGen(3, 10, 5)
	ts := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	tests := []struct {
		name   string
		ev     map[string]any
		withID bool
		want   string
	}{
		{
			name: "schema order with id",
			ev: map[string]any{
				"ts": ts, "is_fraud": true, "country": "GB", "amount": 12.5,
				"merchant_id": "m00002", "user_id": "u00001", "txn_id": "t7",
			},
			withID: true,
			want:   `{"txn_id":"t7","user_id":"u00001","merchant_id":"m00002","amount":12.5,"country":"GB","is_fraud":true,"ts":1772366400123,"_event_id":"t7"}`,
		},
		{
			name: "nulls without id",
			ev: map[string]any{
				"txn_id": "t8", "user_id": "u00002", "merchant_id": "m00001", "amount": -3.0,
				"country": nil, "is_fraud": nil, "ts": ts,
			},
			want: `{"txn_id":"t8","user_id":"u00002","merchant_id":"m00001","amount":-3,"country":null,"is_fraud":null,"ts":1772366400123}`,
		},
		{
			name: "missing and extra fields, chosen id, escapes",
			ev: map[string]any{
				"txn_id": "t9", "user_id": "u\"1\\\n", "zeta": int64(5), "alpha": "x",
				"_event_id": "retry-1",
			},
			withID: true,
			want:   `{"txn_id":"t9","user_id":"u\"1\\\u000a","alpha":"x","zeta":5,"_event_id":"retry-1"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(g.JSON(tt.ev, tt.withID))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("JSON mismatch (-want +got):\n%s", diff)
			}
			if !json.Valid([]byte(got)) {
				t.Errorf("JSON %s is not valid JSON", got)
			}
		})
	}
}

func TestFraudGenJSONRoundTrip(t *testing.T) {
	g := NewFraudGen(11, 100, 20)
	for i, ev := range genEvents(g, 2000) {
		line := g.JSON(ev, true)
		if bytes.ContainsAny(line, "\n ") {
			t.Fatalf("event %d: JSON %s is not compact", i, line)
		}
		var got map[string]any
		if err := json.Unmarshal(line, &got); err != nil {
			t.Fatalf("event %d: %s: %v", i, line, err)
		}
		want := map[string]any{
			"txn_id":      ev["txn_id"],
			"user_id":     ev["user_id"],
			"merchant_id": ev["merchant_id"],
			"amount":      ev["amount"],
			"country":     ev["country"],
			"is_fraud":    ev["is_fraud"],
			"ts":          float64(ev["ts"].(time.Time).UnixMilli()),
			"_event_id":   ev["txn_id"],
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("event %d: round trip mismatch (-want +got):\n%s", i, diff)
		}
	}
}

// TestFraudSchemaMatchesExample keeps FraudSchema and the example's stream
// definition in step.
func TestFraudSchemaMatchesExample(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "examples", "fraud", "features", "transactions.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Kind          string `yaml:"kind"`
		Name          string `yaml:"name"`
		Entity        string `yaml:"entity"`
		Timestamp     string `yaml:"timestamp"`
		TimestampUnit string `yaml:"timestamp_unit"`
		Schema        []struct {
			Name     string `yaml:"name"`
			Type     string `yaml:"type"`
			Nullable bool   `yaml:"nullable"`
		} `yaml:"schema"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("parse transactions.yaml: %v", err)
	}
	sch := FraudSchema()
	var want, got []string
	for _, f := range sch.Fields {
		want = append(want, fmt.Sprintf("%s %s nullable=%t", f.Name, f.Type, f.Nullable))
	}
	for _, f := range doc.Schema {
		got = append(got, fmt.Sprintf("%s %s nullable=%t", f.Name, f.Type, f.Nullable))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("transactions.yaml fields differ from FraudSchema (-FraudSchema +yaml):\n%s", diff)
	}
	head := strings.Join([]string{doc.Kind, doc.Name, doc.Timestamp, doc.TimestampUnit}, " ")
	if wantHead := "stream " + sch.Stream + " " + sch.TimeField + " " + string(sch.TimeUnit); head != wantHead {
		t.Errorf("transactions.yaml declares %q, want %q", head, wantHead)
	}
}

func BenchmarkFraudGen(b *testing.B) {
	g := NewFraudGen(1, 100000, 1000)
	buf := make([]byte, 0, 256)
	ts := genStart
	for b.Loop() {
		buf = AppendFraudJSON(buf[:0], g.Next(ts), true)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
