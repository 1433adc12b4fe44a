package featurestore

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/schemas"
)

// registry returns the fraud repo as stored after a first apply (all v1).
func registry(t *testing.T) *Repo {
	t.Helper()
	p, err := NewRepo().Plan(fraudRepo())
	if err != nil {
		t.Fatal(err)
	}
	return p.Next
}

func TestPlanFromEmpty(t *testing.T) {
	next := fraudRepo()
	for _, cur := range []*Repo{nil, NewRepo()} {
		p, err := cur.Plan(next)
		if err != nil {
			t.Fatal(err)
		}
		want := `+ entity merchant
+ entity user
+ stream transactions (v1)
+ feature_view merchant_txn (v1)
+ feature_view user_txn (v1)
+ feature_service fraud_model_v1
`
		if diff := cmp.Diff(want, p.String()); diff != "" {
			t.Errorf("String() mismatch (-want +got):\n%s", diff)
		}
		if !p.Changed() {
			t.Error("Changed() = false, want true")
		}
		wantNext := fraudRepo()
		wantNext.Streams["transactions"].Schema.Version = 1
		wantNext.Views["user_txn"].Version = 1
		wantNext.Views["merchant_txn"].Version = 1
		if diff := cmp.Diff(wantNext, p.Next); diff != "" {
			t.Errorf("Next mismatch (-want +got):\n%s", diff)
		}
	}
	if diff := cmp.Diff(fraudRepo(), next); diff != "" {
		t.Errorf("Plan modified its argument (-want +got):\n%s", diff)
	}
}

func TestPlanChanges(t *testing.T) {
	tests := []struct {
		name        string
		change      func(r *Repo)
		want        string
		wantChanged bool
		wantStream  int // schema version of transactions in Next; 0: removed
		wantUserTxn int // version of user_txn in Next; 0: removed
	}{
		{
			name:   "unchanged",
			change: func(*Repo) {},
			want: `= entity merchant
= entity user
= stream transactions (v1)
= feature_view merchant_txn (v1)
= feature_view user_txn (v1)
= feature_service fraud_model_v1
`,
			wantStream: 1, wantUserTxn: 1,
		},
		{
			name:   "feature window",
			change: func(r *Repo) { r.Views["user_txn"].Features[2].Window = 48 * hour },
			want: `= entity merchant
= entity user
= stream transactions (v1)
= feature_view merchant_txn (v1)
~ feature_view user_txn v1 -> v2: feature amount_sum_24h: window 24h -> 48h
= feature_service fraud_model_v1
`,
			wantChanged: true, wantStream: 1, wantUserTxn: 2,
		},
		{
			name: "view filter, derive and features",
			change: func(r *Repo) {
				v := r.Views["user_txn"]
				v.Filter = ""
				v.Derive[0].Expr = "amount > 5000"
				v.Derive = append(v.Derive, Derived{Name: "domestic", Expr: `country == "NL"`})
				v.Features = v.Features[1:]
				v.Features[0].Agg, v.Features[0].Field = "count_true", "big"
				v.Features[3].Hop = 0
				v.Features = append(v.Features, Feature{Name: "recent", Field: "amount", Agg: "last_n", N: 5, Window: 7 * day})
			},
			want: `= entity merchant
= entity user
= stream transactions (v1)
= feature_view merchant_txn (v1)
~ feature_view user_txn v1 -> v2: filter "amount > 0" -> none; derive big: "amount > 1000" -> "amount > 5000"; derive domestic added: "country == \"NL\""; feature txn_count_1h: agg count -> count_true, field none -> big; feature amount_max_7d: hop 1h -> none; feature recent added: agg last_n, field amount, window 7d, n 5; feature last_amount removed
= feature_service fraud_model_v1
`,
			wantChanged: true, wantStream: 1, wantUserTxn: 2,
		},
		{
			name: "features reordered",
			change: func(r *Repo) {
				f := r.Views["user_txn"].Features
				f[0], f[1] = f[1], f[0]
			},
			want: `= entity merchant
= entity user
= stream transactions (v1)
= feature_view merchant_txn (v1)
~ feature_view user_txn v1 -> v2: features reordered
= feature_service fraud_model_v1
`,
			wantChanged: true, wantStream: 1, wantUserTxn: 2,
		},
		{
			name: "remove view and service, add service",
			change: func(r *Repo) {
				delete(r.Views, "user_txn")
				delete(r.Services, "fraud_model_v1")
				r.Services["merchant_risk"] = &Service{Name: "merchant_risk", Features: []string{"merchant_txn:*"}}
			},
			want: `= entity merchant
= entity user
= stream transactions (v1)
= feature_view merchant_txn (v1)
- feature_view user_txn (v1)
- feature_service fraud_model_v1
+ feature_service merchant_risk
`,
			wantChanged: true, wantStream: 1,
		},
		{
			name: "service features",
			change: func(r *Repo) {
				r.Services["fraud_model_v1"].Features = []string{"user_txn:last_amount", "user_txn:amount_mean_7d", "merchant_txn:*"}
			},
			want: `= entity merchant
= entity user
= stream transactions (v1)
= feature_view merchant_txn (v1)
= feature_view user_txn (v1)
~ feature_service fraud_model_v1: added user_txn:amount_mean_7d; removed user_txn:txn_count_1h; removed user_txn:amount_sum_24h
`,
			wantChanged: true, wantStream: 1, wantUserTxn: 1,
		},
		{
			name: "compatible schema change",
			change: func(r *Repo) {
				sc := r.Streams["transactions"].Schema
				sc.Fields = append(sc.Fields[1:],
					schemas.Field{Name: "channel", Type: schemas.String, Nullable: true},
					schemas.Field{Name: "tries", Type: schemas.Int64, Default: int64(1)})
				sc.Fields[2].Nullable = true // amount
			},
			want: `= entity merchant
= entity user
~ stream transactions v1 -> v2: field amount: nullable false -> true; field channel added (string, nullable); field tries added (int64, default 1); field txn_id dropped
= feature_view merchant_txn (v1)
= feature_view user_txn (v1)
= feature_service fraud_model_v1
`,
			wantChanged: true, wantStream: 2, wantUserTxn: 1,
		},
		{
			name: "new field read by a new feature",
			change: func(r *Repo) {
				sc := r.Streams["transactions"].Schema
				sc.Fields = append(sc.Fields, schemas.Field{Name: "qty", Type: schemas.Int64, Nullable: true})
				r.Views["merchant_txn"].Features = append(r.Views["merchant_txn"].Features, Feature{Name: "qty_sum_1h", Field: "qty", Agg: "sum", Window: hour})
			},
			want: `= entity merchant
= entity user
~ stream transactions v1 -> v2: field qty added (int64, nullable)
~ feature_view merchant_txn v1 -> v2: feature qty_sum_1h added: agg sum, field qty, window 1h
= feature_view user_txn (v1)
= feature_service fraud_model_v1
`,
			wantChanged: true, wantStream: 2, wantUserTxn: 1,
		},
		{
			name: "remove everything",
			change: func(r *Repo) {
				*r = *NewRepo()
			},
			want: `- entity merchant
- entity user
- stream transactions (v1)
- feature_view merchant_txn (v1)
- feature_view user_txn (v1)
- feature_service fraud_model_v1
`,
			wantChanged: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := fraudRepo()
			tt.change(next)
			p, err := registry(t).Plan(next)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, p.String()); diff != "" {
				t.Errorf("String() mismatch (-want +got):\n%s", diff)
			}
			if p.Changed() != tt.wantChanged {
				t.Errorf("Changed() = %t, want %t", p.Changed(), tt.wantChanged)
			}
			var gotStream, gotView int
			if s := p.Next.Streams["transactions"]; s != nil {
				gotStream = s.Schema.Version
			}
			if v := p.Next.Views["user_txn"]; v != nil {
				gotView = v.Version
			}
			if gotStream != tt.wantStream || gotView != tt.wantUserTxn {
				t.Errorf("versions: stream %d, user_txn %d; want %d, %d", gotStream, gotView, tt.wantStream, tt.wantUserTxn)
			}
		})
	}
}

func TestPlanChangeFields(t *testing.T) {
	next := fraudRepo()
	next.Views["user_txn"].Features[2].Window = 48 * hour
	p, err := registry(t).Plan(next)
	if err != nil {
		t.Fatal(err)
	}
	want := Change{Kind: KindView, Name: "user_txn", Action: Update, Version: 2, Details: []string{"feature amount_sum_24h: window 24h -> 48h"}}
	if diff := cmp.Diff(want, p.Changes[4]); diff != "" {
		t.Errorf("change mismatch (-want +got):\n%s", diff)
	}
	var actions []string
	for _, c := range p.Changes {
		actions = append(actions, c.Action.String())
	}
	wantActions := []string{"unchanged", "unchanged", "unchanged", "unchanged", "update", "unchanged"}
	if diff := cmp.Diff(wantActions, actions); diff != "" {
		t.Errorf("actions mismatch (-want +got):\n%s", diff)
	}
}

func TestPlanWidenedInput(t *testing.T) {
	withQty := func(typ schemas.Type) *Repo {
		r := fraudRepo()
		sc := r.Streams["transactions"].Schema
		sc.Fields = append(sc.Fields, schemas.Field{Name: "qty", Type: typ, Nullable: true})
		v := r.Views["merchant_txn"]
		v.Features = append(v.Features, Feature{Name: "qty_sum_1h", Field: "qty", Agg: "sum", Window: hour})
		return r
	}
	first, err := NewRepo().Plan(withQty(schemas.Int64))
	if err != nil {
		t.Fatal(err)
	}
	p, err := first.Next.Plan(withQty(schemas.Float64))
	if err != nil {
		t.Fatal(err)
	}
	want := `= entity merchant
= entity user
~ stream transactions v1 -> v2: field qty: type int64 -> float64
~ feature_view merchant_txn v1 -> v2: input qty: type int64 -> float64
= feature_view user_txn (v1)
= feature_service fraud_model_v1
`
	if diff := cmp.Diff(want, p.String()); diff != "" {
		t.Errorf("String() mismatch (-want +got):\n%s", diff)
	}
}

func TestPlanVersionsAccumulate(t *testing.T) {
	cur := registry(t)
	for i, w := range []int{48, 72, 96} {
		next := fraudRepo()
		next.Views["user_txn"].Features[2].Window = hour * time.Duration(w)
		p, err := cur.Plan(next)
		if err != nil {
			t.Fatal(err)
		}
		cur = p.Next
		if got := cur.Views["user_txn"].Version; got != i+2 {
			t.Errorf("apply %d: user_txn version %d, want %d", i+1, got, i+2)
		}
		if got := cur.Views["merchant_txn"].Version; got != 1 {
			t.Errorf("apply %d: merchant_txn version %d, want 1", i+1, got)
		}
	}
}

func TestPlanRefused(t *testing.T) {
	tests := []struct {
		name   string
		change func(r *Repo)
		want   []string
	}{
		{
			name:   "incompatible type change",
			change: func(r *Repo) { r.Streams["transactions"].Schema.Fields[3].Type = schemas.String },
			want:   []string{`stream "transactions": field "amount": changing the type from float64 to string is incompatible (add a new field instead, or create a new stream)`},
		},
		{
			name: "topic, entity and timestamp",
			change: func(r *Repo) {
				s := r.Streams["transactions"]
				s.Topic, s.Entity, s.Schema.TimeField = "txns", "merchant", "txn_id"
			},
			want: []string{
				`stream "transactions": changing its topic from "transactions" to "txns" is not allowed (create a new stream instead)`,
				`stream "transactions": changing its entity from "user" to "merchant" is not allowed (create a new stream instead)`,
				`stream "transactions": changing its timestamp field from "ts" to "txn_id" is not allowed (create a new stream instead)`,
			},
		},
		{
			name:   "entity keys",
			change: func(r *Repo) { r.Entities["user"].Types[0] = schemas.Int64 },
			want:   []string{`entity "user": changing its keys from [user_id string] to [user_id int64] is not allowed: streams and stored features are keyed by them (create a new entity instead)`},
		},
		{
			name: "dropped field still read",
			change: func(r *Repo) {
				r.Views["user_txn"].Filter = `amount > 0 && country != "XX"`
				sc := r.Streams["transactions"].Schema
				sc.Fields = append(sc.Fields[:2], sc.Fields[5:]...) // drops merchant_id, amount, country
			},
			want: []string{
				`stream "transactions": field "merchant_id" is dropped but feature_view "merchant_txn" still reads it (change the view first, or keep the field)`,
				`stream "transactions": field "merchant_id" is dropped but feature_view "user_txn" still reads it (change the view first, or keep the field)`,
				`stream "transactions": field "amount" is dropped but feature_view "merchant_txn" still reads it (change the view first, or keep the field)`,
				`stream "transactions": field "amount" is dropped but feature_view "user_txn" still reads it (change the view first, or keep the field)`,
				`stream "transactions": field "country" is dropped but feature_view "merchant_txn" still reads it (change the view first, or keep the field)`,
				`stream "transactions": field "country" is dropped but feature_view "user_txn" still reads it (change the view first, or keep the field)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := fraudRepo()
			tt.change(next)
			p, err := registry(t).Plan(next)
			if err == nil {
				t.Fatalf("Plan succeeded:\n%s", p)
			}
			if diff := cmp.Diff(tt.want, strings.Split(err.Error(), "\n")); diff != "" {
				t.Errorf("error mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func ExampleRepo_Plan() {
	repo := func(window string) map[string][]byte {
		return map[string][]byte{"features/fraud.yaml": []byte(`kind: entity
name: user
key: user_id
---
kind: stream
name: transactions
entity: user
timestamp: ts
schema:
  - {name: user_id, type: string}
  - {name: amount, type: float64}
  - {name: ts, type: timestamp}
---
kind: feature_view
name: user_txn
entity: user
source: transactions
features:
  - {name: amount_sum_24h, field: amount, agg: sum, window: ` + window + `}
`)}
	}
	first, err := Parse(repo("24h"))
	if err != nil {
		panic(err)
	}
	applied, err := NewRepo().Plan(first)
	if err != nil {
		panic(err)
	}
	next, err := Parse(repo("48h"))
	if err != nil {
		panic(err)
	}
	p, err := applied.Next.Plan(next)
	if err != nil {
		panic(err)
	}
	fmt.Print(p)
	// Output:
	// = entity user
	// = stream transactions (v1)
	// ~ feature_view user_txn v1 -> v2: feature amount_sum_24h: window 24h -> 48h
}

func ExampleParse() {
	_, err := Parse(map[string][]byte{"features/fraud.yaml": []byte(`kind: entity
name: user
key: user_id
---
kind: stream
name: transactions
entity: user
timestamp: ts
schema:
  - {name: user_id, type: string}
  - {name: amount, type: float64}
  - {name: ts, type: timestamp}
---
kind: feature_view
name: user_txn
entity: user
source: transactions
features:
  - {name: txn_count_1h, agg: count, window: 1h}
  - {name: amount_avg_1h, field: amount, agg: avg, window: 1h}
`)})
	fmt.Println(err)
	// Output:
	// features/fraud.yaml:20: document 3 (feature_view "user_txn"): features[1].agg: unknown aggregation "avg" (use one of count, count_true, sum, mean, min, max, stddev, last, first, last_n, approx_distinct)
}

func TestPlanKeepsPreviousVersion(t *testing.T) {
	v1 := registry(t)
	if len(v1.Previous) != 0 {
		t.Fatalf("a first apply keeps previous versions: %v", v1.Previous)
	}
	next := fraudRepo()
	next.Views["user_txn"].Features[2].Window = 48 * hour
	p, err := v1.Plan(next)
	if err != nil {
		t.Fatal(err)
	}
	v2 := p.Next
	prev := v2.Previous["user_txn"]
	if prev == nil || prev.Version != 1 || prev.Features[2].Window != 24*hour {
		t.Fatalf("after an update, Previous[user_txn] = %+v, want version 1 with its 24h window", prev)
	}
	if _, ok := v2.Previous["merchant_txn"]; ok {
		t.Error("an unchanged view gained a previous version")
	}
	cv, err := CompilePrevious(v2, "user_txn")
	if err != nil || cv == nil || cv.View.Version != 1 {
		t.Fatalf("CompilePrevious = %v, %v; want version 1", cv, err)
	}
	if cv, err := CompilePrevious(v2, "merchant_txn"); cv != nil || err != nil {
		t.Errorf("CompilePrevious(merchant_txn) = %v, %v; want nil, nil", cv, err)
	}

	// An apply that leaves the view alone keeps its previous version, and
	// the registry's records carry it to other nodes.
	p, err = v2.Plan(next)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := p.Next.Records()
	if err != nil {
		t.Fatal(err)
	}
	back, err := FromRecords(recs)
	if err != nil {
		t.Fatal(err)
	}
	if got := back.Previous["user_txn"]; got == nil || got.Version != 1 {
		t.Errorf("after an unchanged apply and a round trip, Previous[user_txn] = %+v, want version 1", got)
	}

	// Removing the view drops it.
	gone := fraudRepo()
	delete(gone.Views, "user_txn")
	for _, s := range gone.Services {
		s.Features = slices.DeleteFunc(s.Features, func(f string) bool { return strings.HasPrefix(f, "user_txn") })
	}
	if p, err = v2.Plan(gone); err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Next.Previous["user_txn"]; ok {
		t.Error("a removed view kept its previous version")
	}
}

// TestPlanKeepsTheServedVersionWhileBuilding updates a view twice: when the
// second version is still catching up, the first stays the previous one.
func TestPlanKeepsTheServedVersionWhileBuilding(t *testing.T) {
	withWindow := func(h time.Duration) *Repo {
		r := fraudRepo()
		r.Views["user_txn"].Features[2].Window = h
		return r
	}
	p, err := registry(t).Plan(withWindow(48 * hour))
	if err != nil {
		t.Fatal(err)
	}
	v2 := p.Next
	for _, tt := range []struct {
		building bool
		want     int
	}{{true, 1}, {false, 2}} {
		asked := ""
		p, err := v2.plan(withWindow(72*hour), func(repo *Repo, view string) bool {
			asked = view
			return tt.building
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Next.Previous["user_txn"]; got == nil || got.Version != tt.want {
			t.Errorf("version 2 building %v: previous %+v, want version %d", tt.building, got, tt.want)
		}
		if p.Next.Views["user_txn"].Version != 3 || asked != "user_txn" {
			t.Errorf("version %d, asked about %q; want 3 and user_txn", p.Next.Views["user_txn"].Version, asked)
		}
	}
}
