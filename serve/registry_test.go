package serve_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/serve"
)

func applyBody(t *testing.T, files map[string]string, dryRun bool) string {
	t.Helper()
	b, err := json.Marshal(serve.ApplyRequest{Files: files, DryRun: dryRun})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// withMaxFeature is the test repository with a feature added to user_txn.
var withMaxFeature = strings.Replace(repoYAML,
	"  - {name: lifetime_count, agg: count}\n",
	"  - {name: lifetime_count, agg: count}\n  - {name: amount_max_24h, field: amount, agg: max, window: 24h}\n", 1)

func TestGetRegistry(t *testing.T) {
	f := newFixture(t, serve.Options{})
	code, body := f.do(t, http.MethodGet, "/v1/registry", "")
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	var got featurestore.Repo
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	if diff := cmp.Diff(f.reg.Repo(), &got); diff != "" {
		t.Errorf("GET /v1/registry (-registry +answer):\n%s", diff)
	}
	if v := got.Views["user_txn"]; v == nil || v.Version != 1 || len(v.Features) != 5 {
		t.Errorf("GET /v1/registry: user_txn = %+v, want version 1 with 5 features", v)
	}
}

func TestApply(t *testing.T) {
	f := newFixture(t, serve.Options{})
	ctx := context.Background()
	changed := map[string]string{"f.yaml": withMaxFeature}
	newFeature := `{"features": ["user_txn:amount_max_24h"], "entities": {"user_id": ["u1"]}}`
	logLen := f.log.len()

	// A dry run plans the change and changes nothing.
	code, body := f.do(t, http.MethodPost, "/v1/registry/apply", applyBody(t, changed, true))
	if code != http.StatusOK {
		t.Fatalf("dry run: status %d: %s", code, body)
	}
	var resp serve.ApplyResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	const planLine = "~ feature_view user_txn v1 -> v2: "
	if !resp.Changed || !strings.Contains(resp.Plan, planLine) || !strings.Contains(resp.Plan, "amount_max_24h") {
		t.Errorf("dry run: changed %v, plan:\n%s\nwant a change with %q naming amount_max_24h", resp.Changed, resp.Plan, planLine)
	}
	if v := f.reg.Repo().Views["user_txn"].Version; v != 1 || f.log.len() != logLen {
		t.Errorf("dry run changed the registry: user_txn version %d, log %d -> %d records", v, logLen, f.log.len())
	}
	if code, _ := f.features(t, newFeature); code != http.StatusBadRequest {
		t.Errorf("after a dry run, the planned feature is served (status %d)", code)
	}

	// The same through the client, for real.
	client := &serve.Client{URL: f.srv.URL, HTTP: f.srv.Client()}
	got, err := client.Apply(ctx, changed, false)
	if err != nil {
		t.Fatalf("Client.Apply: %v", err)
	}
	if !got.Changed || !strings.Contains(got.Plan, planLine) {
		t.Errorf("apply: changed %v, plan:\n%s", got.Changed, got.Plan)
	}
	if !containsChange(got.Changes, featurestore.Change{Kind: "feature_view", Name: "user_txn", Action: featurestore.Update, Version: 2}) {
		t.Errorf("apply: changes %+v lack the update of user_txn to v2", got.Changes)
	}
	if v := f.reg.Repo().Views["user_txn"].Version; v != 2 || f.log.len() <= logLen {
		t.Errorf("after apply: user_txn version %d, log %d -> %d records", v, logLen, f.log.len())
	}
	// The new feature serves at once (version 2 holds no events yet).
	checkFeatures(t, f, newFeature, `{
		"metadata": {"feature_names": ["user_id", "amount_max_24h"]},
		"results": [
			{"values": ["u1"], "statuses": ["PRESENT"], "event_timestamps": ["`+epoch+`"]},
			{"values": [null], "statuses": ["NOT_FOUND"], "event_timestamps": ["`+epoch+`"]}
		]
	}`)
	code, body = f.do(t, http.MethodGet, "/v1/registry", "")
	if code != http.StatusOK || !strings.Contains(string(body), `"amount_max_24h"`) {
		t.Errorf("GET /v1/registry after apply: status %d, body lacks the new feature: %s", code, body)
	}

	// Applying the same again changes nothing.
	again, err := client.Apply(ctx, changed, false)
	if err != nil {
		t.Fatalf("second Client.Apply: %v", err)
	}
	if again.Changed || strings.ContainsAny(again.Plan, "+~-") {
		t.Errorf("re-apply: changed %v, plan:\n%s\nwant nothing changed", again.Changed, again.Plan)
	}
}

func containsChange(changes []featurestore.Change, want featurestore.Change) bool {
	for _, c := range changes {
		if c.Kind == want.Kind && c.Name == want.Name && c.Action == want.Action && c.Version == want.Version {
			return true
		}
	}
	return false
}

func TestApplyRefuses(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{
			name:  "unknown aggregation",
			files: map[string]string{"f.yaml": strings.Replace(repoYAML, "agg: mean", "agg: avg", 1)},
			want:  []string{"f.yaml", `unknown aggregation "avg"`},
		},
		{
			name:  "unknown entity",
			files: map[string]string{"f.yaml": strings.Replace(repoYAML, "entity: user_merchant", "entity: user_merch", 1)},
			want:  []string{"f.yaml", `"user_merch"`},
		},
		{
			name:  "not YAML",
			files: map[string]string{"f.yaml": "kind: [entity"},
			want:  []string{"f.yaml"},
		},
		{
			name:  "incompatible change",
			files: map[string]string{"f.yaml": strings.Replace(repoYAML, "name: transactions\n", "name: transactions\ntopic: transactions_v2\n", 1)},
			want:  []string{`stream "transactions"`, "topic", `"transactions_v2"`},
		},
	}
	f := newFixture(t, serve.Options{})
	before := f.reg.Repo()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := f.do(t, http.MethodPost, "/v1/registry/apply", applyBody(t, tc.files, false))
			if code != http.StatusUnprocessableEntity {
				t.Fatalf("status %d, want 422; body %s", code, body)
			}
			msg := errorOf(t, body)
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %s", msg, w)
				}
			}
			if f.reg.Repo() != before {
				t.Error("a refused apply changed the registry")
			}
		})
	}
	code, body := f.do(t, http.MethodPost, "/v1/registry/apply", `{"files": `)
	if code != http.StatusBadRequest {
		t.Errorf("malformed apply body: status %d, want 400; body %s", code, body)
	}
}

// A registry log that cannot be written is the server's trouble, not a
// problem with the caller's repository: it must not answer 422.
func TestApplyLogFailureIsAServerError(t *testing.T) {
	f := newFixture(t, serve.Options{})
	f.log.fail = errLogDown
	code, body := f.do(t, http.MethodPost, "/v1/registry/apply", applyBody(t, map[string]string{"f.yaml": withMaxFeature}, false))
	if code < 500 {
		t.Errorf("apply with the registry log down: status %d, want 5xx; body %s", code, body)
	}
	if msg := errorOf(t, body); !strings.Contains(msg, errLogDown.Error()) {
		t.Errorf("error %q does not say why", msg)
	}
	if v := f.reg.Repo().Views["user_txn"].Version; v != 1 {
		t.Errorf("a failed apply activated version %d", v)
	}
}

func TestHealthz(t *testing.T) {
	f := newFixture(t, serve.Options{Ready: map[string]serve.Check{
		"broker": func(context.Context) error { return errors.New("down") },
	}})
	code, body := f.do(t, http.MethodGet, "/healthz", "")
	if code != http.StatusOK {
		t.Errorf("GET /healthz with a failing readiness check: status %d, want 200; body %s", code, body)
	}
}

func TestReadyz(t *testing.T) {
	ok := func(context.Context) error { return nil }
	tests := []struct {
		name  string
		ready map[string]serve.Check
		code  int
		want  map[string]string
	}{
		{"no checks", nil, http.StatusOK, map[string]string{}},
		{"all pass", map[string]serve.Check{"broker": ok, "store": ok}, http.StatusOK, map[string]string{"broker": "ok", "store": "ok"}},
		{
			name: "one fails",
			ready: map[string]serve.Check{
				"broker": ok,
				"consumers": func(context.Context) error {
					return errors.New("1200 records behind")
				},
			},
			code: http.StatusServiceUnavailable,
			want: map[string]string{"broker": "ok", "consumers": "1200 records behind"},
		},
		{
			name: "checks get a deadline",
			ready: map[string]serve.Check{"store": func(ctx context.Context) error {
				if _, ok := ctx.Deadline(); !ok {
					return errors.New("no deadline")
				}
				return nil
			}},
			code: http.StatusOK,
			want: map[string]string{"store": "ok"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, serve.Options{Ready: tc.ready})
			code, body := f.do(t, http.MethodGet, "/readyz", "")
			if code != tc.code {
				t.Errorf("status %d, want %d", code, tc.code)
			}
			var got map[string]string
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("decode %s: %v", body, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("GET /readyz (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	f := newFixture(t, serve.Options{Registerer: reg, Gatherer: reg})
	f.features(t, `{"features": ["user_txn:txn_count_1h"], "entities": {"user_id": ["u1"]}}`)
	f.features(t, `{"features": ["user_txn:nope"], "entities": {"user_id": ["u1"]}}`)
	resp, err := f.srv.Client().Get(f.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(text), "sluice_serve_request_duration_seconds_count") {
		t.Errorf("GET /metrics: status %d, body lacks the request histogram:\n%s", resp.StatusCode, text)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != "sluice_serve_request_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := ""
			for _, l := range m.GetLabel() {
				labels += l.GetName() + "=" + l.GetValue() + " "
			}
			counts[strings.TrimSpace(labels)] = m.GetHistogram().GetSampleCount()
		}
	}
	want := map[string]uint64{"code=200 route=get-online-features": 1, "code=400 route=get-online-features": 1}
	if diff := cmp.Diff(want, counts); diff != "" {
		t.Errorf("request histogram counts (-want +got):\n%s", diff)
	}
}

// Without an online store the node serves the registry but no features.
func TestNoStore(t *testing.T) {
	f := newFixture(t, serve.Options{})
	mux := http.NewServeMux()
	serve.New(f.reg, nil, serve.Options{}).Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/get-online-features", strings.NewReader(`{}`)))
	if rec.Code != http.StatusNotFound {
		t.Errorf("POST /get-online-features without a store: status %d, want 404", rec.Code)
	}
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/registry", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("GET /v1/registry without a store: status %d, want 200", rec.Code)
	}
}
