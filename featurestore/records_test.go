package featurestore

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/schemas"
)

// defaultsRepo adds a stream whose fields have defaults of every type.
func defaultsRepo(t *testing.T) *Repo {
	t.Helper()
	r := registry(t)
	r.Streams["clicks"] = &Stream{Name: "clicks", Topic: "web.clicks", Entity: "user", Schema: &schemas.Schema{
		Stream: "clicks", Version: 3,
		Fields: []schemas.Field{
			{Name: "user_id", Type: schemas.String},
			{Name: "at", Type: schemas.Int64},
			{Name: "page", Type: schemas.String, Default: "home"},
			{Name: "big", Type: schemas.Int64, Default: int64(1) << 60},
			{Name: "w", Type: schemas.Float64, Default: 2.5},
			{Name: "ok", Type: schemas.Bool, Nullable: true, Default: true},
			{Name: "since", Type: schemas.Timestamp, Default: time.Date(2024, 1, 2, 3, 4, 5, 6000, time.UTC).UnixMicro()},
		},
		TimeField: "at", TimeUnit: schemas.Seconds, UnknownFields: schemas.IgnoreUnknown, KeyFields: []string{"user_id"},
	}}
	return r
}

func TestRecordsRoundTrip(t *testing.T) {
	want := defaultsRepo(t)
	recs, err := want.Records()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, rec := range recs {
		keys = append(keys, rec.Key)
	}
	wantKeys := []string{
		"entity/merchant", "entity/user", "stream/clicks", "stream/transactions",
		"feature_view/merchant_txn", "feature_view/user_txn", "feature_service/fraud_model_v1",
	}
	if diff := cmp.Diff(wantKeys, keys); diff != "" {
		t.Errorf("record keys mismatch (-want +got):\n%s", diff)
	}
	got, err := FromRecords(recs)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("FromRecords(Records()) mismatch (-want +got):\n%s", diff)
	}
}

func TestRecordValue(t *testing.T) {
	recs, err := registry(t).Records()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"user","keys":["user_id"],"types":["string"]}`
	if got := string(recs[1].Value); got != want {
		t.Errorf("entity/user value = %s, want %s", got, want)
	}
}

func TestFromRecordsReplay(t *testing.T) {
	cur := registry(t)
	recs, err := cur.Records()
	if err != nil {
		t.Fatal(err)
	}
	next := fraudRepo()
	next.Views["user_txn"].Features[2].Window = 48 * hour
	delete(next.Services, "fraud_model_v1")
	p, err := cur.Plan(next)
	if err != nil {
		t.Fatal(err)
	}
	later, err := p.Next.Records()
	if err != nil {
		t.Fatal(err)
	}
	recs = append(recs, later...)
	recs = append(recs, Record{Key: "feature_service/fraud_model_v1"}) // tombstone
	got, err := FromRecords(recs)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p.Next, got); diff != "" {
		t.Errorf("replay mismatch (-want +got):\n%s", diff)
	}
	if got.Views["user_txn"].Version != 2 {
		t.Errorf("user_txn version %d, want 2", got.Views["user_txn"].Version)
	}
}

func TestFromRecordsErrors(t *testing.T) {
	good, err := registry(t).Records()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		recs []Record
		want []string
	}{
		{
			name: "bad records",
			recs: []Record{
				{Key: "entity", Value: []byte(`{}`)},
				{Key: "table/t", Value: []byte(`{}`)},
				{Key: "entity/user", Value: []byte(`{"name":"usr","keys":["user_id"],"types":["string"]}`)},
				{Key: "entity/user", Value: []byte(`{"name":`)},
				{Key: "entity/user", Value: []byte(`{"name":"user","keys":["user_id"],"types":["text"]}`)},
			},
			want: []string{
				`registry record "entity": key is not <kind>/<name>`,
				`registry record "table/t": unknown kind "table" (use one of entity, stream, feature_view, feature_service)`,
				`registry record "entity/user": holds a definition named "usr"`,
				`registry record "entity/user": decode: unexpected EOF`,
				`registry record "entity/user": decode: unknown type "text" (use one of string, int64, float64, bool, timestamp)`,
			},
		},
		{
			name: "entity removed while a stream uses it",
			recs: append(good[:len(good):len(good)], Record{Key: "entity/user"}),
			want: []string{
				`stream "transactions": entity: unknown entity "user" (known entities: merchant)`,
				`feature_view "user_txn": entity: unknown entity "user" (known entities: merchant)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FromRecords(tt.recs)
			if err == nil {
				t.Fatal("FromRecords succeeded")
			}
			if diff := cmp.Diff(tt.want, strings.Split(err.Error(), "\n")); diff != "" {
				t.Errorf("error mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFromRecordsEmpty(t *testing.T) {
	got, err := FromRecords(nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(NewRepo(), got); diff != "" {
		t.Errorf("FromRecords(nil) mismatch (-want +got):\n%s", diff)
	}
}

func TestViewJSONKeepsAllowedLatenessAsText(t *testing.T) {
	v := View{Name: "v", Version: 2, Entity: "user", Source: "s", AllowedLateness: 90 * time.Minute,
		Features: []Feature{{Name: "n", Agg: "count", Window: time.Hour}}}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"allowed_lateness":"1h30m"`) || !strings.Contains(string(b), `"window":"1h"`) {
		t.Errorf("JSON %s lacks the durations as text", b)
	}
	var back View
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(v, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestDecodeRepoRoundTrip(t *testing.T) {
	repo := defaultsRepo(t)
	b, err := json.Marshal(repo)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeRepo(b)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := repo.Records()
	have, _ := got.Records()
	if diff := cmp.Diff(want, have); diff != "" {
		t.Errorf("records after a JSON round trip (-want +got):\n%s", diff)
	}
}
