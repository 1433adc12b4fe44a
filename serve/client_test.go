package serve_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/serve"
)

func TestClientGetOnlineFeatures(t *testing.T) {
	f := newFixture(t, serve.Options{})
	client := &serve.Client{URL: f.srv.URL + "/", HTTP: f.srv.Client()}
	got, err := client.GetOnlineFeatures(context.Background(), &serve.Request{
		Features: []string{"user_txn:txn_count_1h", "account_txn:account_count", "user_txn:amount_mean_24h"},
		Entities: map[string][]serve.EntityValue{
			"user_id":    {serve.StringKey("u1"), serve.StringKey("u2")},
			"account_id": {serve.IntKey(7), serve.IntKey(10)},
		},
		FullFeatureNames: true,
		At:               "2026-03-01T11:50:00.000001Z",
	})
	if err != nil {
		t.Fatalf("GetOnlineFeatures: %v", err)
	}
	// Numbers come back as json.Number, so int64 values stay exact.
	n := func(s string) json.Number { return json.Number(s) }
	want := &serve.Response{Results: []serve.Column{
		{Values: []any{"u1", "u2"}, Statuses: []string{"PRESENT", "PRESENT"}, EventTimestamps: []string{epoch, epoch}},
		{Values: []any{n("7"), n("10")}, Statuses: []string{"PRESENT", "PRESENT"}, EventTimestamps: []string{epoch, epoch}},
		{Values: []any{n("2"), n("0")}, Statuses: []string{"PRESENT", "PRESENT"}, EventTimestamps: []string{"2026-03-01T11:50:00Z", epoch}},
		{Values: []any{n("30"), nil}, Statuses: []string{"PRESENT", "NULL_VALUE"}, EventTimestamps: []string{"2026-03-01T11:50:00Z", epoch}},
		{Values: []any{n("4"), n("0")}, Statuses: []string{"PRESENT", "NOT_FOUND"}, EventTimestamps: []string{"2026-03-01T11:50:00Z", epoch}},
	}}
	want.Metadata.FeatureNames = []string{"user_id", "account_id", "user_txn__txn_count_1h", "user_txn__amount_mean_24h", "account_txn__account_count"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GetOnlineFeatures (-want +got):\n%s", diff)
	}
}

func TestClientErrors(t *testing.T) {
	f := newFixture(t, serve.Options{})
	client := &serve.Client{URL: f.srv.URL, HTTP: f.srv.Client()}
	ctx := context.Background()
	_, err := client.GetOnlineFeatures(ctx, &serve.Request{
		Features: []string{"user_txn:nope"},
		Entities: map[string][]serve.EntityValue{"user_id": {serve.StringKey("u1")}},
	})
	if err == nil || !strings.Contains(err.Error(), `feature view "user_txn" has no feature "nope"`) {
		t.Errorf("GetOnlineFeatures of an unknown feature: err = %v, want the server's message", err)
	}
	_, err = client.Apply(ctx, map[string]string{"f.yaml": strings.Replace(repoYAML, "agg: mean", "agg: avg", 1)}, false)
	if err == nil || !strings.Contains(err.Error(), `unknown aggregation "avg"`) {
		t.Errorf("Apply of an invalid repo: err = %v, want the server's message", err)
	}

	down := httptest.NewServer(nil)
	url := down.URL
	down.Close()
	_, err = (&serve.Client{URL: url}).GetOnlineFeatures(ctx, &serve.Request{Features: []string{"user_txn:*"}})
	if err == nil || !strings.Contains(err.Error(), url) || !strings.Contains(err.Error(), "sluice up") {
		t.Errorf("GetOnlineFeatures with no node: err = %v, want one naming %s and how to start a node", err, url)
	}
}

func TestEntityValueJSON(t *testing.T) {
	tests := []struct {
		in   string
		want string // re-encoded
	}{
		{`"u1"`, `"u1"`},
		{`""`, `""`},
		{`"a|b"`, `"a|b"`},
		{`42`, `42`},
		{`-7`, `-7`},
		{`9223372036854775807`, `9223372036854775807`},
		{`"42"`, `"42"`},
	}
	for _, tc := range tests {
		var v serve.EntityValue
		if err := json.Unmarshal([]byte(tc.in), &v); err != nil {
			t.Errorf("Unmarshal(%s): %v", tc.in, err)
			continue
		}
		b, err := json.Marshal(v)
		if err != nil || string(b) != tc.want {
			t.Errorf("Marshal(Unmarshal(%s)) = %s, %v; want %s", tc.in, b, err, tc.want)
		}
	}
	for _, bad := range []string{`1.5`, `1e3`, `9223372036854775808`, `null`, `true`, `[]`, `{}`} {
		var v serve.EntityValue
		if err := json.Unmarshal([]byte(bad), &v); err == nil {
			t.Errorf("Unmarshal(%s) = %v, want an error", bad, v)
		}
	}
	if b, _ := json.Marshal([]serve.EntityValue{serve.StringKey("u1"), serve.IntKey(-3)}); string(b) != `["u1",-3]` {
		t.Errorf("Marshal(StringKey, IntKey) = %s", b)
	}
}

// TestClientKeepsInt64Exact checks that a value above 2^53 survives the
// client's decoding.
func TestClientKeepsInt64Exact(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(`{"metadata":{"feature_names":["big"]},"results":[{"values":[9007199254740993],"statuses":["PRESENT"],"event_timestamps":["1970-01-01T00:00:00Z"]}]}`))
	}))
	defer srv.Close()
	got, err := (&serve.Client{URL: srv.URL}).GetOnlineFeatures(context.Background(), &serve.Request{Features: []string{"v:big"}})
	if err != nil {
		t.Fatal(err)
	}
	if v := got.Results[0].Values[0]; v != json.Number("9007199254740993") {
		t.Fatalf("value = %#v, want json.Number 9007199254740993", v)
	}
}
