package featurestore

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/schemas"
)

const (
	hour = time.Hour
)

// fraudRepo is what testdata/fraud holds, before versions are assigned.
func fraudRepo() *Repo {
	r := NewRepo()
	r.Entities["user"] = &Entity{Name: "user", Keys: []string{"user_id"}, Types: []schemas.Type{schemas.String}}
	r.Entities["merchant"] = &Entity{Name: "merchant", Keys: []string{"merchant_id"}, Types: []schemas.Type{schemas.String}}
	r.Streams["transactions"] = &Stream{
		Name: "transactions", Topic: "transactions", Entity: "user",
		Schema: &schemas.Schema{
			Stream: "transactions",
			Fields: []schemas.Field{
				{Name: "txn_id", Type: schemas.String},
				{Name: "user_id", Type: schemas.String},
				{Name: "merchant_id", Type: schemas.String},
				{Name: "amount", Type: schemas.Float64},
				{Name: "country", Type: schemas.String, Nullable: true},
				{Name: "is_fraud", Type: schemas.Bool, Nullable: true},
				{Name: "ts", Type: schemas.Timestamp},
			},
			TimeField:     "ts",
			TimeUnit:      schemas.Milliseconds,
			UnknownFields: schemas.RejectUnknown,
			KeyFields:     []string{"user_id"},
		},
	}
	r.Views["user_txn"] = &View{
		Name: "user_txn", Entity: "user", Source: "transactions",
		Filter: "amount > 0",
		Derive: []Derived{{Name: "big", Expr: "amount > 1000"}},
		Features: []Feature{
			{Name: "last_amount", Field: "amount", Agg: "last", TTL: 30 * day},
			{Name: "txn_count_1h", Agg: "count", Window: hour},
			{Name: "amount_sum_24h", Field: "amount", Agg: "sum", Window: 24 * hour},
			{Name: "amount_mean_7d", Field: "amount", Agg: "mean", Window: 7 * day},
			{Name: "amount_max_7d", Field: "amount", Agg: "max", Window: 7 * day, Hop: hour},
			{Name: "merchants_24h", Field: "merchant_id", Agg: "approx_distinct", Window: 24 * hour},
			{Name: "big_count_30d", Field: "big", Agg: "count_true", Window: 30 * day},
			{Name: "lifetime_count", Agg: "count"},
		},
	}
	r.Views["merchant_txn"] = &View{
		Name: "merchant_txn", Entity: "merchant", Source: "transactions",
		Features: []Feature{
			{Name: "txn_count_24h", Agg: "count", Window: 24 * hour},
			{Name: "amount_mean_30d", Field: "amount", Agg: "mean", Window: 30 * day},
			{Name: "fraud_count_30d", Field: "is_fraud", Agg: "count_true", Window: 30 * day},
			{Name: "users_7d", Field: "user_id", Agg: "approx_distinct", Window: 7 * day},
			{Name: "last_country", Field: "country", Agg: "last", TTL: 7 * day},
		},
	}
	r.Services["fraud_model_v1"] = &Service{
		Name:     "fraud_model_v1",
		Features: []string{"user_txn:last_amount", "user_txn:txn_count_1h", "user_txn:amount_sum_24h", "merchant_txn:*"},
	}
	return r
}

func TestParseDirFraud(t *testing.T) {
	got, err := ParseDir("testdata/fraud")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(fraudRepo(), got); diff != "" {
		t.Errorf("ParseDir(testdata/fraud) mismatch (-want +got):\n%s", diff)
	}
}

func TestParseDirErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := ParseDir(dir)
	want := "feature repository " + dir + " holds no .yaml or .yml files (add definitions, see kind: entity, stream, feature_view, feature_service)"
	if err == nil || err.Error() != want {
		t.Errorf("ParseDir(empty dir) error = %v, want %q", err, want)
	}
	if _, err := ParseDir(dir + "/missing"); err == nil {
		t.Error("ParseDir(missing dir) succeeded")
	}
}

// baseYAML declares the entities and the stream most cases build on.
const baseYAML = `kind: entity
name: user
key: user_id
---
kind: entity
name: merchant
key: merchant_id
---
kind: stream
name: transactions
entity: user
timestamp: ts
schema:
  - {name: user_id, type: string}
  - {name: merchant_id, type: string}
  - {name: amount, type: float64}
  - {name: qty, type: int64}
  - {name: country, type: string, nullable: true}
  - {name: is_fraud, type: bool, nullable: true}
  - {name: ts, type: timestamp}
`

func TestParseKinds(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want func(r *Repo) any
		def  any
	}{
		{
			name: "composite key with one type",
			yaml: "kind: entity\nname: pair\nkeys: [a, b]\ntype: int64\n",
			want: func(r *Repo) any { return r.Entities["pair"] },
			def:  &Entity{Name: "pair", Keys: []string{"a", "b"}, Types: []schemas.Type{schemas.Int64, schemas.Int64}},
		},
		{
			name: "composite key with types",
			yaml: "kind: entity\nname: pair\nkeys: [a, b]\ntypes: [string, int64]\n",
			want: func(r *Repo) any { return r.Entities["pair"] },
			def:  &Entity{Name: "pair", Keys: []string{"a", "b"}, Types: []schemas.Type{schemas.String, schemas.Int64}},
		},
		{
			name: "stream defaults and field defaults",
			yaml: `kind: stream
name: clicks
entity: user
timestamp: at
schema:
  - {name: user_id, type: string}
  - {name: at, type: int64}
  - {name: page, type: string, default: home}
  - {name: n, type: int64, default: 3}
  - {name: w, type: float64, default: 2}
  - {name: ok, type: bool, nullable: true, default: false}
  - {name: since, type: timestamp, default: "2024-01-02T03:04:05.000006Z"}
`,
			want: func(r *Repo) any { return r.Streams["clicks"] },
			def: &Stream{Name: "clicks", Topic: "clicks", Entity: "user", Schema: &schemas.Schema{
				Stream: "clicks",
				Fields: []schemas.Field{
					{Name: "user_id", Type: schemas.String},
					{Name: "at", Type: schemas.Int64},
					{Name: "page", Type: schemas.String, Default: "home"},
					{Name: "n", Type: schemas.Int64, Default: int64(3)},
					{Name: "w", Type: schemas.Float64, Default: float64(2)},
					{Name: "ok", Type: schemas.Bool, Nullable: true, Default: false},
					{Name: "since", Type: schemas.Timestamp, Default: time.Date(2024, 1, 2, 3, 4, 5, 6000, time.UTC).UnixMicro()},
				},
				TimeField: "at", TimeUnit: schemas.Milliseconds, UnknownFields: schemas.RejectUnknown,
				KeyFields: []string{"user_id"},
			}},
		},
		{
			name: "stream with topic, unit and ignore",
			yaml: `kind: stream
name: clicks
topic: web.clicks-v2
entity: user
timestamp: at
timestamp_unit: s
unknown_fields: ignore
schema: [{name: user_id, type: string}, {name: at, type: int64}]
`,
			want: func(r *Repo) any { return r.Streams["clicks"] },
			def: &Stream{Name: "clicks", Topic: "web.clicks-v2", Entity: "user", Schema: &schemas.Schema{
				Stream:    "clicks",
				Fields:    []schemas.Field{{Name: "user_id", Type: schemas.String}, {Name: "at", Type: schemas.Int64}},
				TimeField: "at", TimeUnit: schemas.Seconds, UnknownFields: schemas.IgnoreUnknown,
				KeyFields: []string{"user_id"},
			}},
		},
		{
			name: "view takes its stream's entity, last_n and combined durations",
			yaml: `kind: feature_view
name: v
source: transactions
features:
  - {name: recent, field: amount, agg: last_n, n: 5, window: 1h30m}
  - {name: first_qty, field: qty, agg: first}
  - {name: sd, field: qty, agg: stddev, window: 2w, hop: 90s}
`,
			want: func(r *Repo) any { return r.Views["v"] },
			def: &View{Name: "v", Entity: "user", Source: "transactions", Features: []Feature{
				{Name: "recent", Field: "amount", Agg: "last_n", N: 5, Window: 90 * time.Minute},
				{Name: "first_qty", Field: "qty", Agg: "first"},
				{Name: "sd", Field: "qty", Agg: "stddev", Window: 14 * day, Hop: 90 * time.Second},
			}},
		},
		{
			name: "anchors and merge keys",
			yaml: `kind: feature_view
name: v
entity: user
source: transactions
features:
  - &base {name: s1, field: amount, agg: sum, window: 1h}
  - {<<: *base, name: s2, window: 2h}
`,
			want: func(r *Repo) any { return r.Views["v"] },
			def: &View{Name: "v", Entity: "user", Source: "transactions", Features: []Feature{
				{Name: "s1", Field: "amount", Agg: "sum", Window: hour},
				{Name: "s2", Field: "amount", Agg: "sum", Window: 2 * hour},
			}},
		},
		{
			name: "service",
			yaml: `kind: feature_view
name: v
entity: user
source: transactions
features: [{name: c, agg: count}]
---
kind: feature_service
name: svc
features:
  - v:c
`,
			want: func(r *Repo) any { return r.Services["svc"] },
			def:  &Service{Name: "svc", Features: []string{"v:c"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse(map[string][]byte{"base.yaml": []byte(baseYAML), "case.yaml": []byte(tt.yaml)})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.def, tt.want(r)); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseEmptyDocuments(t *testing.T) {
	src := "---\n# only a comment\n---\n" + baseYAML + "---\n"
	r, err := Parse(map[string][]byte{"a.yaml": []byte(src)})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(r.Entities) + len(r.Streams); got != 3 {
		t.Errorf("got %d definitions, want 3", got)
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"entities.yaml", "transactions.yaml", "views.yaml"} {
		b, err := os.ReadFile(filepath.Join("testdata/fraud", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(viewYAML("filter: amount > 0\nderive: [{name: d, expr: qty * 2}]\n", "  - {name: a, field: d, agg: sum, window: 1h, hop: 5m}\n")))
	f.Add([]byte("kind: stream\nname: s\nentity: user\ntimestamp: t\nschema: [{name: user_id, type: string}, {name: t, type: timestamp, default: 2024-01-01T00:00:00Z}]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Parse(map[string][]byte{"base.yaml": []byte(baseYAML), "case.yaml": b})
		if err != nil {
			return
		}
		recs, err := r.Records()
		if err != nil {
			t.Fatalf("Records: %v", err)
		}
		back, err := FromRecords(recs)
		if err != nil {
			t.Fatalf("FromRecords(Records()) of a parsed repo: %v", err)
		}
		if diff := cmp.Diff(r, back); diff != "" {
			t.Fatalf("round trip mismatch (-parsed +replayed):\n%s", diff)
		}
		if _, err := NewRepo().Plan(r); err != nil {
			t.Fatalf("Plan from empty: %v", err)
		}
	})
}

func TestParseBoundsMerges(t *testing.T) {
	// Each item merges the one before ten times: 10^8 mappings if expanded.
	var b strings.Builder
	b.WriteString("  - &a0 {name: f, agg: count}\n")
	for i := 1; i <= 8; i++ {
		fmt.Fprintf(&b, "  - &a%d {<<: [%s]}\n", i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d, ", i-1), 10), ", "))
	}
	_, err := Parse(map[string][]byte{"base.yaml": []byte(baseYAML), "case.yaml": []byte(viewYAML("", b.String()))})
	want := `case.yaml:9: document 1 (feature_view "v"): features[3]: too many merged mappings (<<) in one document (merge at most 1000)`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Parse error = %v, want it to contain %q", err, want)
	}
}
