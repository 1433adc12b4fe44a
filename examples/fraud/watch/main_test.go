package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// feastServer answers /get-online-features with body and records the
// requests it got.
func feastServer(t *testing.T, status int, body string, got *[]map[string]any) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/get-online-features" {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
			return
		}
		var req map[string]any
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req["authorization"] = r.Header.Get("Authorization")
		*got = append(*got, req)
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

const feastBody = `{
  "metadata": {"feature_names": ["user_id", "last_amount", "last_country", "txn_count_1h", "amount_mean_7d", "last_amounts"]},
  "results": [
    {"values": ["u00001"], "statuses": ["PRESENT"], "event_timestamps": ["1970-01-01T00:00:00Z"]},
    {"values": [23.5], "statuses": ["PRESENT"], "event_timestamps": ["2026-03-01T12:00:00Z"]},
    {"values": [null], "statuses": ["NULL_VALUE"], "event_timestamps": ["2026-03-01T12:00:00Z"]},
    {"values": [236], "statuses": ["PRESENT"], "event_timestamps": ["2026-03-01T12:00:00Z"]},
    {"values": [57.123456], "statuses": ["PRESENT"], "event_timestamps": ["2026-03-01T12:00:00Z"]},
    {"values": [[1.5, null, 3]], "statuses": ["PRESENT"], "event_timestamps": ["2026-03-01T12:00:00Z"]}
  ]
}`

func TestRunPrintsFeatures(t *testing.T) {
	var reqs []map[string]any
	srv := feastServer(t, http.StatusOK, feastBody, &reqs)
	tests := []struct {
		name string
		args []string
		want map[string]any
	}{
		{
			name: "service",
			args: []string{"-token", ""},
			want: map[string]any{
				"feature_service": "fraud_model_v1",
				"entities":        map[string]any{"user_id": []any{"u00001"}},
				"authorization":   "",
			},
		},
		{
			name: "features and token",
			args: []string{"-features", "user_txn:last_amount,user_spend:*", "-entity", "user_id=u00042", "-token", "s3cret"},
			want: map[string]any{
				"features":      []any{"user_txn:last_amount", "user_spend:*"},
				"entities":      map[string]any{"user_id": []any{"u00042"}},
				"authorization": "Bearer s3cret",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reqs = nil
			var out bytes.Buffer
			args := append([]string{"-server", srv.URL + "/", "-n", "1"}, tt.args...)
			if err := run(context.Background(), args, &out, io.Discard); err != nil {
				t.Fatal(err)
			}
			if len(reqs) != 1 {
				t.Fatalf("server got %d requests, want 1", len(reqs))
			}
			if diff := cmp.Diff(tt.want, reqs[0]); diff != "" {
				t.Errorf("request mismatch (-want +got):\n%s", diff)
			}
			want := regexp.MustCompile(`^\d\d:\d\d:\d\d user_id=u00001 last_amount=23.5 last_country=- txn_count_1h=236 amount_mean_7d=57.12 last_amounts=\[1.5,-,3\]\n$`)
			if !want.MatchString(out.String()) {
				t.Errorf("output %q does not match %s", out.String(), want)
			}
		})
	}
}

func TestRunErrors(t *testing.T) {
	var reqs []map[string]any
	bad := feastServer(t, http.StatusNotFound, `{"error": "unknown feature service \"nope\""}`, &reqs)
	mismatched := feastServer(t, http.StatusOK, `{"metadata": {"feature_names": ["a", "b"]}, "results": []}`, &reqs)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"http error", []string{"-server", bad.URL, "-service", "nope"}, `404 Not Found: {"error": "unknown feature service \"nope\""}`},
		{"bad response", []string{"-server", mismatched.URL}, "response names 2 columns but holds 0"},
		{"no server", []string{"-server", "http://127.0.0.1:1"}, "(is sluice running at http://127.0.0.1:1?)"},
		{"bad entity", []string{"-entity", "u00001"}, `-entity "u00001": want key=value, for example user_id=u00001`},
		{"bad every", []string{"-every", "0s"}, "-every 0s: must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(context.Background(), append([]string{"-n", "1"}, tt.args...), io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}
