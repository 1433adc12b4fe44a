package serve_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/serve"
)

func TestDatasets(t *testing.T) {
	f := newFixture(t, serve.Options{})
	client := &serve.Client{URL: f.srv.URL, HTTP: f.srv.Client()}
	for _, m := range []string{`{"id":"b2","rows":2}`, `{"id":"a1","rows":1}`} {
		id, err := client.RegisterDataset(t.Context(), json.RawMessage(m))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(m, id) {
			t.Errorf("RegisterDataset(%s) = %q", m, id)
		}
	}
	code, body := f.do(t, http.MethodGet, "/v1/datasets", "")
	if code != http.StatusOK {
		t.Fatalf("GET /v1/datasets: %d %s", code, body)
	}
	var list struct{ Datasets []map[string]any }
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{{"id": "a1", "rows": 1.0}, {"id": "b2", "rows": 2.0}}
	if diff := cmp.Diff(want, list.Datasets); diff != "" {
		t.Errorf("GET /v1/datasets (-want +got):\n%s", diff)
	}
	code, body = f.do(t, http.MethodGet, "/v1/datasets/b2", "")
	if code != http.StatusOK || string(body) != `{"id":"b2","rows":2}`+"\n" {
		t.Errorf("GET /v1/datasets/b2: %d %q", code, body)
	}
	code, body = f.do(t, http.MethodGet, "/v1/datasets/nope", "")
	if code != http.StatusNotFound || !strings.Contains(string(body), `nope`) {
		t.Errorf("GET /v1/datasets/nope: %d %s, want 404 naming it", code, body)
	}
	for _, bad := range []string{`{"rows":1}`, `[1,2`} {
		if code, body := f.do(t, http.MethodPost, "/v1/datasets", bad); code != http.StatusBadRequest {
			t.Errorf("POST /v1/datasets %s: %d %s, want 400", bad, code, body)
		}
	}
}
