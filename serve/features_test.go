package serve_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/serve"
)

const epoch = "1970-01-01T00:00:00Z"

// checkFeatures posts body and compares the answer, as JSON, to want.
func checkFeatures(t *testing.T, f *fixture, body, want string) {
	t.Helper()
	code, got := f.features(t, body)
	if code != http.StatusOK {
		t.Fatalf("POST /get-online-features %s: status %d, body %s", body, code, got)
	}
	if diff := cmp.Diff(decodeJSON(t, []byte(want)), decodeJSON(t, got)); diff != "" {
		t.Errorf("POST /get-online-features %s (-want +got):\n%s", body, diff)
	}
}

// The answer is Feast's: entity key column first, then one column per
// feature, each with one value, status and RFC 3339 event timestamp per row.
// u1 has data in every window, u2 only an event 3 days old, u9 none.
func TestFeastFormat(t *testing.T) {
	f := newFixture(t, serve.Options{})
	checkFeatures(t, f, `{
		"features": ["user_txn:last_amount", "user_txn:txn_count_1h", "user_txn:amount_sum_24h",
			"user_txn:amount_mean_24h", "user_txn:lifetime_count"],
		"entities": {"user_id": ["u1", "u2", "u9"]}
	}`, `{
		"metadata": {"feature_names": ["user_id", "last_amount", "txn_count_1h", "amount_sum_24h", "amount_mean_24h", "lifetime_count"]},
		"results": [
			{"values": ["u1", "u2", "u9"], "statuses": ["PRESENT", "PRESENT", "PRESENT"],
			 "event_timestamps": ["`+epoch+`", "`+epoch+`", "`+epoch+`"]},
			{"values": [40, null, null], "statuses": ["PRESENT", "OUTSIDE_MAX_AGE", "NOT_FOUND"],
			 "event_timestamps": ["2026-03-01T11:50:00Z", "`+epoch+`", "`+epoch+`"]},
			{"values": [2, 0, 0], "statuses": ["PRESENT", "PRESENT", "NOT_FOUND"],
			 "event_timestamps": ["2026-03-01T11:50:00Z", "`+epoch+`", "`+epoch+`"]},
			{"values": [90, 0, 0], "statuses": ["PRESENT", "PRESENT", "NOT_FOUND"],
			 "event_timestamps": ["2026-03-01T11:50:00Z", "`+epoch+`", "`+epoch+`"]},
			{"values": [30, null, null], "statuses": ["PRESENT", "NULL_VALUE", "NOT_FOUND"],
			 "event_timestamps": ["2026-03-01T11:50:00Z", "`+epoch+`", "`+epoch+`"]},
			{"values": [4, 1, 0], "statuses": ["PRESENT", "PRESENT", "NOT_FOUND"],
			 "event_timestamps": ["2026-03-01T11:50:00Z", "2026-02-26T12:00:00Z", "`+epoch+`"]}
		]
	}`)
}

// Counts and sums are JSON numbers written as integers where they are
// integers, so clients in typed languages read them as such.
func TestCountIsAnInteger(t *testing.T) {
	f := newFixture(t, serve.Options{})
	code, body := f.features(t, `{"features": ["user_txn:txn_count_1h"], "entities": {"user_id": ["u1", "u9"]}}`)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	if !strings.Contains(string(body), `"values":[2,0]`) {
		t.Errorf("counts not written as integers: %s", body)
	}
}

func TestFeatureSelection(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
	}{
		{
			name: "feature service spans views and expands view:*",
			body: `{"feature_service": "fraud_v1", "entities": {"user_id": ["u1"], "merchant_id": ["m1"]}}`,
			want: `{"metadata": {"feature_names": ["user_id", "merchant_id", "last_amount", "txn_count_1h", "pair_count", "pair_last_amount"]},
				"results": [
					{"values": ["u1"], "statuses": ["PRESENT"], "event_timestamps": ["` + epoch + `"]},
					{"values": ["m1"], "statuses": ["PRESENT"], "event_timestamps": ["` + epoch + `"]},
					{"values": [40], "statuses": ["PRESENT"], "event_timestamps": ["2026-03-01T11:50:00Z"]},
					{"values": [2], "statuses": ["PRESENT"], "event_timestamps": ["2026-03-01T11:50:00Z"]},
					{"values": [3], "statuses": ["PRESENT"], "event_timestamps": ["2026-03-01T11:50:00Z"]},
					{"values": [40], "statuses": ["PRESENT"], "event_timestamps": ["2026-03-01T11:50:00Z"]}
				]}`,
		},
		{
			name: "view:* gives every feature in definition order",
			body: `{"features": ["user_txn:*"], "entities": {"user_id": ["u2"]}}`,
			want: `{"metadata": {"feature_names": ["user_id", "last_amount", "txn_count_1h", "amount_sum_24h", "amount_mean_24h", "lifetime_count"]},
				"results": [
					{"values": ["u2"], "statuses": ["PRESENT"], "event_timestamps": ["` + epoch + `"]},
					{"values": [null], "statuses": ["OUTSIDE_MAX_AGE"], "event_timestamps": ["` + epoch + `"]},
					{"values": [0], "statuses": ["PRESENT"], "event_timestamps": ["` + epoch + `"]},
					{"values": [0], "statuses": ["PRESENT"], "event_timestamps": ["` + epoch + `"]},
					{"values": [null], "statuses": ["NULL_VALUE"], "event_timestamps": ["` + epoch + `"]},
					{"values": [1], "statuses": ["PRESENT"], "event_timestamps": ["2026-02-26T12:00:00Z"]}
				]}`,
		},
		{
			name: "full feature names",
			body: `{"features": ["user_txn:txn_count_1h", "pair_txn:pair_count"], "full_feature_names": true,
				"entities": {"user_id": ["u1"], "merchant_id": ["m2"]}}`,
			want: `{"metadata": {"feature_names": ["user_id", "merchant_id", "user_txn__txn_count_1h", "pair_txn__pair_count"]},
				"results": [
					{"values": ["u1"], "statuses": ["PRESENT"], "event_timestamps": ["` + epoch + `"]},
					{"values": ["m2"], "statuses": ["PRESENT"], "event_timestamps": ["` + epoch + `"]},
					{"values": [2], "statuses": ["PRESENT"], "event_timestamps": ["2026-03-01T11:50:00Z"]},
					{"values": [1], "statuses": ["PRESENT"], "event_timestamps": ["2026-03-01T10:00:00Z"]}
				]}`,
		},
		{
			name: "full feature names false keeps short names",
			body: `{"features": ["user_txn:lifetime_count"], "full_feature_names": false, "entities": {"user_id": ["u1"]}}`,
			want: `{"metadata": {"feature_names": ["user_id", "lifetime_count"]},
				"results": [
					{"values": ["u1"], "statuses": ["PRESENT"], "event_timestamps": ["` + epoch + `"]},
					{"values": [4], "statuses": ["PRESENT"], "event_timestamps": ["2026-03-01T11:50:00Z"]}
				]}`,
		},
	}
	f := newFixture(t, serve.Options{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkFeatures(t, f, tc.body, tc.want) })
	}
}

// Composite keys map to the state of exactly their parts; '|' inside a part
// never makes two keys collide.
func TestCompositeKeys(t *testing.T) {
	f := newFixture(t, serve.Options{})
	checkFeatures(t, f, `{
		"features": ["pair_txn:pair_count", "pair_txn:pair_last_amount"],
		"entities": {"merchant_id": ["m1", "m2", "c", "b|c", "m9", "m1"], "user_id": ["u1", "u1", "a|b", "a", "u1", "u2"]}
	}`, `{
		"metadata": {"feature_names": ["user_id", "merchant_id", "pair_count", "pair_last_amount"]},
		"results": [
			{"values": ["u1", "u1", "a|b", "a", "u1", "u2"], "statuses": ["PRESENT", "PRESENT", "PRESENT", "PRESENT", "PRESENT", "PRESENT"],
			 "event_timestamps": ["`+epoch+`", "`+epoch+`", "`+epoch+`", "`+epoch+`", "`+epoch+`", "`+epoch+`"]},
			{"values": ["m1", "m2", "c", "b|c", "m9", "m1"], "statuses": ["PRESENT", "PRESENT", "PRESENT", "PRESENT", "PRESENT", "PRESENT"],
			 "event_timestamps": ["`+epoch+`", "`+epoch+`", "`+epoch+`", "`+epoch+`", "`+epoch+`", "`+epoch+`"]},
			{"values": [3, 1, 1, 1, 0, 1], "statuses": ["PRESENT", "PRESENT", "PRESENT", "PRESENT", "NOT_FOUND", "PRESENT"],
			 "event_timestamps": ["2026-03-01T11:50:00Z", "2026-03-01T10:00:00Z", "2026-03-01T11:00:00Z", "2026-03-01T11:00:00Z", "`+epoch+`", "2026-02-26T12:00:00Z"]},
			{"values": [40, 20, 1, 2, null, 5], "statuses": ["PRESENT", "PRESENT", "PRESENT", "PRESENT", "NOT_FOUND", "PRESENT"],
			 "event_timestamps": ["2026-03-01T11:50:00Z", "2026-03-01T10:00:00Z", "2026-03-01T11:00:00Z", "2026-03-01T11:00:00Z", "`+epoch+`", "2026-02-26T12:00:00Z"]}
		]
	}`)
}

// Integer keys are accepted as JSON integers (echoed as integers) and, for
// an int64 entity, as their decimal text.
func TestIntegerEntityKeys(t *testing.T) {
	f := newFixture(t, serve.Options{})
	checkFeatures(t, f, `{"features": ["account_txn:account_count"], "entities": {"account_id": [7, 8, "7", 10, 9]}}`, `{
		"metadata": {"feature_names": ["account_id", "account_count"]},
		"results": [
			{"values": [7, 8, "7", 10, 9], "statuses": ["PRESENT", "PRESENT", "PRESENT", "PRESENT", "PRESENT"],
			 "event_timestamps": ["`+epoch+`", "`+epoch+`", "`+epoch+`", "`+epoch+`", "`+epoch+`"]},
			{"values": [4, 1, 4, 0, 2], "statuses": ["PRESENT", "PRESENT", "PRESENT", "NOT_FOUND", "PRESENT"],
			 "event_timestamps": ["2026-03-01T11:50:00Z", "2026-02-26T12:00:00Z", "2026-03-01T11:50:00Z", "`+epoch+`", "2026-03-01T11:00:00Z"]}
		]
	}`)
}

// "at" reads as of a past time with the strict boundary of the time rule:
// an event at exactly t is not seen, one microsecond later it is.
func TestAt(t *testing.T) {
	features := `"features": ["user_txn:last_amount", "user_txn:txn_count_1h", "user_txn:amount_sum_24h", "user_txn:amount_mean_24h", "user_txn:lifetime_count"]`
	names := `{"feature_names": ["user_id", "last_amount", "txn_count_1h", "amount_sum_24h", "amount_mean_24h", "lifetime_count"]}`
	col := func(v any, ts string) string {
		return fmt.Sprintf(`{"values": [%v], "statuses": ["PRESENT"], "event_timestamps": [%q]}`, v, ts)
	}
	key := `{"values": ["u1"], "statuses": ["PRESENT"], "event_timestamps": ["` + epoch + `"]}`
	tests := []struct {
		at   string
		want []string // the five feature columns
	}{
		{
			// The 1h window's tail is floor(10:00, 5m) = 10:00, inclusive.
			at: "2026-03-01T11:00:00Z",
			want: []string{col(20, "2026-03-01T10:00:00Z"), col(1, "2026-03-01T10:00:00Z"), col(20, "2026-03-01T10:00:00Z"),
				col(20, "2026-03-01T10:00:00Z"), col(2, "2026-03-01T10:00:00Z")},
		},
		{
			at: "2026-03-01T13:00:00+02:00", // the same instant
			want: []string{col(20, "2026-03-01T10:00:00Z"), col(1, "2026-03-01T10:00:00Z"), col(20, "2026-03-01T10:00:00Z"),
				col(20, "2026-03-01T10:00:00Z"), col(2, "2026-03-01T10:00:00Z")},
		},
		{
			at: "2026-03-01T11:50:00Z", // the 40 at 11:50 is not seen yet
			want: []string{col(30, "2026-03-01T11:30:00Z"), col(1, "2026-03-01T11:30:00Z"), col(50, "2026-03-01T11:30:00Z"),
				col(25, "2026-03-01T11:30:00Z"), col(3, "2026-03-01T11:30:00Z")},
		},
		{
			at: "2026-03-01T11:50:00.000001Z",
			want: []string{col(40, "2026-03-01T11:50:00Z"), col(2, "2026-03-01T11:50:00Z"), col(90, "2026-03-01T11:50:00Z"),
				col(30, "2026-03-01T11:50:00Z"), col(4, "2026-03-01T11:50:00Z")},
		},
		{
			at: "2026-03-01T14:00:00Z", // later than now: the future event counts
			want: []string{col(99, "2026-03-01T13:00:00Z"), col(1, "2026-03-01T13:00:00Z"), col(189, "2026-03-01T13:00:00Z"),
				col(47.25, "2026-03-01T13:00:00Z"), col(5, "2026-03-01T13:00:00Z")},
		},
	}
	f := newFixture(t, serve.Options{})
	for _, tc := range tests {
		t.Run(tc.at, func(t *testing.T) {
			body := fmt.Sprintf(`{%s, "entities": {"user_id": ["u1"]}, "at": %q}`, features, tc.at)
			want := `{"metadata": ` + names + `, "results": [` + key + `, ` + strings.Join(tc.want, ", ") + `]}`
			checkFeatures(t, f, body, want)
		})
	}
	// A view with a lifetime feature keeps state for its retention too:
	// reading further back is refused, naming the view and its retention.
	code, body := f.do(t, http.MethodPost, "/get-online-features", `{"features": ["user_txn:txn_count_1h", "user_txn:last_amount"], "entities": {"user_id": ["u1"]}, "at": "2026-01-01T00:00:00Z"}`)
	if code != http.StatusBadRequest || !strings.Contains(string(body), `feature view \"user_txn\" keeps state for 26h0m0s`) {
		t.Errorf("read before the retention: %d %s, want 400 naming the view and its retention", code, body)
	}
	// An entity never seen: counts are 0 and last is null, both NOT_FOUND.
	checkFeatures(t, f, `{"features": ["user_txn:txn_count_1h", "user_txn:last_amount"], "entities": {"user_id": ["u9"]}, "at": "2026-03-01T11:00:00Z"}`, `{
		"metadata": {"feature_names": ["user_id", "txn_count_1h", "last_amount"]},
		"results": [{"values": ["u9"], "statuses": ["PRESENT"], "event_timestamps": ["`+epoch+`"]},
			{"values": [0], "statuses": ["NOT_FOUND"], "event_timestamps": ["`+epoch+`"]},
			{"values": [null], "statuses": ["NOT_FOUND"], "event_timestamps": ["`+epoch+`"]}]
	}`)
}

func TestBadRequests(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []string // each must appear in the error message
	}{
		{"malformed JSON", `{"features": ["user_txn:txn_count_1h"], "entities": {`, []string{"body"}},
		{"not an object", `["user_txn:txn_count_1h"]`, []string{"body"}},
		{"unknown view", `{"features": ["nope:txn_count_1h"], "entities": {"user_id": ["u1"]}}`, []string{`"nope"`}},
		{"unknown feature", `{"features": ["user_txn:nope"], "entities": {"user_id": ["u1"]}}`, []string{`"nope"`, `"user_txn"`}},
		{"feature without view", `{"features": ["txn_count_1h"], "entities": {"user_id": ["u1"]}}`, []string{`"txn_count_1h"`, "view:feature"}},
		{"unknown service", `{"feature_service": "nope", "entities": {"user_id": ["u1"]}}`, []string{"feature_service", `"nope"`}},
		{"features and service", `{"features": ["user_txn:txn_count_1h"], "feature_service": "fraud_v1", "entities": {"user_id": ["u1"]}}`,
			[]string{"features", "feature_service"}},
		{"nothing requested", `{"entities": {"user_id": ["u1"]}}`, []string{"features"}},
		{"empty feature list", `{"features": [], "entities": {"user_id": ["u1"]}}`, []string{"features"}},
		{"no entities", `{"features": ["user_txn:txn_count_1h"]}`, []string{"entities"}},
		{"missing entity key", `{"features": ["pair_txn:pair_count"], "entities": {"user_id": ["u1"]}}`, []string{`"merchant_id"`, `"pair_txn"`}},
		{"wrong entity key", `{"features": ["user_txn:txn_count_1h"], "entities": {"merchant_id": ["m1"]}}`, []string{`"user_id"`}},
		{"columns of different lengths", `{"features": ["pair_txn:pair_count"], "entities": {"user_id": ["u1", "u2"], "merchant_id": ["m1"]}}`,
			[]string{"entities", "1", "2"}},
		{"float entity key", `{"features": ["user_txn:txn_count_1h"], "entities": {"user_id": [1.5]}}`, []string{"1.5", "integer"}},
		{"null entity key", `{"features": ["user_txn:txn_count_1h"], "entities": {"user_id": [null]}}`, []string{"null"}},
		{"entity values not a list", `{"features": ["user_txn:txn_count_1h"], "entities": {"user_id": "u1"}}`, []string{"body"}},
		{"invalid at", `{"features": ["user_txn:txn_count_1h"], "entities": {"user_id": ["u1"]}, "at": "yesterday"}`, []string{"at", `"yesterday"`, "RFC 3339"}},
		{"at without zone", `{"features": ["user_txn:txn_count_1h"], "entities": {"user_id": ["u1"]}, "at": "2026-03-01T11:00:00"}`, []string{"at"}},
	}
	f := newFixture(t, serve.Options{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := f.features(t, tc.body)
			if code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400; body %s", code, body)
			}
			msg := errorOf(t, body)
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %s", msg, w)
				}
			}
		})
	}
}

func TestOnlyPostServesFeatures(t *testing.T) {
	f := newFixture(t, serve.Options{})
	code, _ := f.do(t, http.MethodGet, "/get-online-features", "")
	if code != http.StatusMethodNotAllowed {
		t.Errorf("GET /get-online-features: status %d, want 405", code)
	}
}

// A request with no rows gets empty columns: JSON lists, never null, which
// Feast clients cannot iterate.
func TestNoRows(t *testing.T) {
	f := newFixture(t, serve.Options{})
	checkFeatures(t, f, `{"features": ["user_txn:txn_count_1h"], "entities": {"user_id": []}}`, `{
		"metadata": {"feature_names": ["user_id", "txn_count_1h"]},
		"results": [
			{"values": [], "statuses": [], "event_timestamps": []},
			{"values": [], "statuses": [], "event_timestamps": []}
		]
	}`)
}

// Lookups run while the registry changes under them.
func TestConcurrentLookupsAndApply(t *testing.T) {
	f := newFixture(t, serve.Options{})
	body := `{"feature_service": "fraud_v1", "entities": {"user_id": ["u1", "u2"], "merchant_id": ["m1", "m1"]}}`
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				if code, b := f.features(t, body); code != http.StatusOK {
					t.Errorf("status %d: %s", code, b)
					return
				}
			}
		})
	}
	for i := range 5 {
		files := map[string]string{"f.yaml": strings.Replace(repoYAML, "window: 1h}", fmt.Sprintf("window: %dh}", i+2), 1)}
		if code, b := f.do(t, http.MethodPost, "/v1/registry/apply", applyBody(t, files, false)); code != http.StatusOK {
			t.Errorf("apply %d: status %d: %s", i, code, b)
		}
	}
	wg.Wait()
	if v := f.reg.Repo().Views["user_txn"].Version; v != 6 {
		t.Errorf("user_txn version after 5 changes = %d, want 6", v)
	}
}
