package ingest

import (
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/segmentio/ksuid"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	ev1 = `{"user_id":"u1","amount":12.5,"ts":"2024-05-01T10:00:00Z","country":"DE"}`
	ev2 = `{"user_id":"u2","amount":3,"ts":"2024-05-01T10:00:01Z","country":null}`
	ev3 = `{"user_id":"u1","amount":-1.25,"ts":"2024-05-01T10:00:02.5Z"}`
)

// landed is what a test checks of a record in Kafka.
type landed struct {
	Key, Value string
}

func landedOf(recs []*kgo.Record) []landed {
	out := make([]landed, len(recs))
	for i, r := range recs {
		out[i] = landed{Key: string(r.Key), Value: string(r.Value)}
	}
	slices.SortFunc(out, func(a, b landed) int { return strings.Compare(a.Value, b.Value) })
	return out
}

func TestIngestBodyFormats(t *testing.T) {
	all := []landed{{"u1", ev3}, {"u1", ev1}, {"u2", ev2}}
	slices.SortFunc(all, func(a, b landed) int { return strings.Compare(a.Value, b.Value) })
	tests := []struct {
		name        string
		contentType string
		body        string
		want        []landed
	}{
		{
			name:        "ndjson",
			contentType: "application/x-ndjson",
			body:        ev1 + "\n\n" + ev2 + "\r\n  \n" + ev3 + "\n",
			want:        all,
		},
		{
			name:        "ndjson without a final newline, with a charset",
			contentType: "application/x-ndjson; charset=utf-8",
			body:        ev1 + "\n" + ev2 + "\n" + ev3,
			want:        all,
		},
		{
			name:        "ndjson sent as json",
			contentType: "application/json",
			body:        ev1 + "\n" + ev2 + "\n" + ev3 + "\n",
			want:        all,
		},
		{
			name:        "array",
			contentType: "application/json",
			body:        "[" + ev1 + ",\n  " + ev2 + " , " + ev3 + "]\n",
			want:        all,
		},
		{
			name: "pretty-printed array is compacted in field order",
			body: "[\n  {\n    \"user_id\": \"u1\",\n\t\"amount\": 12.5,\n    \"ts\": \"2024-05-01T10:00:00Z\",\n    \"country\": \"DE\"\n  }\n]",
			want: []landed{{"u1", ev1}},
		},
		{
			name:        "single object",
			contentType: "application/json",
			body:        ev2,
			want:        []landed{{"u2", ev2}},
		},
		{
			name: "single pretty-printed object",
			body: "  {\"user_id\":\"u2\",\n \"amount\":3,\n \"ts\":\"2024-05-01T10:00:01Z\",\n \"country\":null}  ",
			want: []landed{{"u2", ev2}},
		},
		{
			name:        "empty array",
			contentType: "application/json",
			body:        " [ ] ",
			want:        []landed{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			code, _, body := e.post(t, "transactions", tt.contentType, tt.body)
			if code != http.StatusOK {
				t.Fatalf("status %d, want 200; body %s", code, body)
			}
			want := Response{Accepted: len(tt.want), Rejected: []Rejection{}}
			if diff := cmp.Diff(want, decodeResponse(t, body)); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
			if !strings.Contains(body, `"rejected":[]`) {
				t.Errorf("response %s: rejected must be [] when empty", body)
			}
			if diff := cmp.Diff(tt.want, landedOf(e.consume(t, len(tt.want)))); diff != "" {
				t.Errorf("records in kafka (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIngestRejectsInvalidEvents(t *testing.T) {
	e := newEnv(t, Options{})
	body := strings.Join([]string{
		ev1,
		`{"user_id":"u3","amount":"12,5","ts":"2024-05-01T10:00:00Z"}`,
		`{"amount":1,"ts":"2024-05-01T10:00:00Z"}`,
		ev2,
		`{"user_id":"u4","amount":1,"ts":"2024-05-01T10:00:00Z","colour":"red"}`,
		`42`,
		`{"user_id":"u5","amount":1,"ts":"2024-05-01T10:00:00Z","_event_id":""}`,
	}, "\n")
	code, _, resp := e.post(t, "transactions", "application/x-ndjson", body)
	if code != http.StatusOK {
		t.Fatalf("status %d, want 200; body %s", code, resp)
	}
	want := Response{Accepted: 2, Rejected: []Rejection{
		{Index: 1, Error: `stream "transactions": field "amount": expected float64, got string "12,5"`},
		{Index: 2, Error: `stream "transactions": field "user_id": required field is missing`},
		{Index: 4, Error: `stream "transactions": field "colour": not in the schema (add it to the schema, or set unknown_fields: ignore on the stream)`},
		{Index: 5, Error: `stream "transactions": expected a JSON object, got number 42`},
		{Index: 6, Error: `stream "transactions": field "_event_id": empty id (omit the field to have an id assigned)`},
	}}
	if diff := cmp.Diff(want, decodeResponse(t, resp)); diff != "" {
		t.Errorf("response (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]landed{{"u1", ev1}, {"u2", ev2}}, landedOf(e.consume(t, 2))); diff != "" {
		t.Errorf("records in kafka (-want +got):\n%s", diff)
	}

	stream := map[string]string{"stream": "transactions"}
	for _, m := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"sluice_ingest_events_accepted_total", stream, 2},
		{"sluice_ingest_events_rejected_total", stream, 5},
		{"sluice_ingest_requests_total", map[string]string{"code": "200"}, 1},
		{"sluice_ingest_produce_duration_seconds", stream, 1},
	} {
		if got := metric(t, e.reg, m.name, m.labels); got != m.want {
			t.Errorf("%s%v = %v, want %v", m.name, m.labels, got, m.want)
		}
	}
}

func TestIngestRecordContract(t *testing.T) {
	e := newEnv(t, Options{})
	withID := `{"_event_id":"order-7","user_id":"u9","amount":1,"ts":"2024-05-01T10:00:00Z"}`
	body := ev1 + "\n" + withID + "\n" + ev2 + "\n"
	code, _, resp := e.post(t, "transactions", "application/x-ndjson", body)
	if code != http.StatusOK {
		t.Fatalf("status %d, want 200; body %s", code, resp)
	}
	recs := e.consume(t, 3)
	byValue := map[string]*kgo.Record{}
	for _, r := range recs {
		byValue[string(r.Value)] = r
	}
	version := strconv.Itoa(schemaVersion)
	var assigned []ksuid.KSUID
	for _, tc := range []struct {
		value, key, id string // id "" means assigned by ingest
	}{
		{ev1, "u1", ""},
		{withID, "u9", "order-7"},
		{ev2, "u2", ""},
	} {
		r := byValue[tc.value]
		if r == nil {
			t.Fatalf("no record with value %s", tc.value)
		}
		if r.Topic != "transactions" || string(r.Key) != tc.key {
			t.Errorf("record %s: topic %q key %q, want transactions %q", tc.value, r.Topic, r.Key, tc.key)
		}
		if len(r.Headers) != 2 || r.Headers[0].Key != HeaderEventID || r.Headers[1].Key != HeaderSchemaVersion {
			t.Fatalf("record %s: headers %v, want %s and %s", tc.value, r.Headers, HeaderEventID, HeaderSchemaVersion)
		}
		if got := string(r.Headers[1].Value); got != version {
			t.Errorf("record %s: %s = %q, want %q", tc.value, HeaderSchemaVersion, got, version)
		}
		id := string(r.Headers[0].Value)
		if tc.id != "" {
			if id != tc.id {
				t.Errorf("record %s: %s = %q, want the producer's %q", tc.value, HeaderEventID, id, tc.id)
			}
			continue
		}
		k, err := ksuid.Parse(id)
		if err != nil || len(id) != 27 {
			t.Fatalf("record %s: %s = %q is not a KSUID: %v", tc.value, HeaderEventID, id, err)
		}
		if !k.Time().Equal(testNow) {
			t.Errorf("record %s: KSUID time %v, want the handler clock %v", tc.value, k.Time(), testNow)
		}
		assigned = append(assigned, k)
	}
	if assigned[0] == assigned[1] {
		t.Errorf("two events got the same id %s", assigned[0])
	}
	if ksuid.Compare(assigned[0], assigned[1]) >= 0 {
		t.Errorf("ids %s, %s are not ordered by body position", assigned[0], assigned[1])
	}
	if r := byValue[ev1]; r.Timestamp.IsZero() || time.Since(r.Timestamp) > time.Minute {
		t.Errorf("record timestamp %v, want the time it was produced", r.Timestamp)
	}
}

func TestIngestAssignsFreshIDsPerRequest(t *testing.T) {
	e := newEnv(t, Options{})
	for range 2 {
		if code, _, resp := e.post(t, "transactions", "application/x-ndjson", ev1); code != http.StatusOK {
			t.Fatalf("status %d, want 200; body %s", code, resp)
		}
	}
	recs := e.consume(t, 2)
	a, b := string(recs[0].Headers[0].Value), string(recs[1].Headers[0].Value)
	if a == b {
		t.Errorf("two requests assigned the same event id %s", a)
	}
}

func TestIngestWholeBodyErrors(t *testing.T) {
	tests := []struct {
		name        string
		stream      string
		contentType string
		body        string
		code        int
		err         string
	}{
		{
			name:   "unknown stream",
			stream: "payments",
			body:   ev1,
			code:   http.StatusNotFound,
			err:    `unknown stream "payments" (apply a feature repository that defines it)`,
		},
		{
			name:        "ndjson line cut short",
			contentType: "application/x-ndjson",
			body:        ev1 + "\n\n" + `{"user_id":"u1","amount":1` + "\n" + ev2,
			code:        http.StatusBadRequest,
			err:         `stream "transactions": request body: invalid JSON at line 3, column 27 (event 1): unexpected end of the line: an NDJSON event must be complete on one line; nothing was written`,
		},
		{
			name:        "ndjson with two events on a line",
			contentType: "application/x-ndjson",
			body:        ev1 + " " + ev2,
			code:        http.StatusBadRequest,
			err:         `stream "transactions": request body: invalid JSON at line 1, column 75 (event 0): unexpected '{' after the event (NDJSON holds one event per line); nothing was written`,
		},
		{
			name:        "array with a bad element",
			contentType: "application/json",
			body:        "[" + ev1 + ",\n" + `{"user_id": u2}` + "]",
			code:        http.StatusBadRequest,
			err:         `stream "transactions": request body: invalid JSON at line 2, column 13 (event 1): invalid character 'u' looking for beginning of value; nothing was written`,
		},
		{
			name:   "array not closed",
			body:   "[" + ev1,
			code:   http.StatusBadRequest,
			err:    `stream "transactions": request body: invalid JSON at line 1, column 75 (event 1): the array is not closed: expected ',' or ']', got the end of the body; nothing was written`,
			stream: "transactions",
		},
		{
			name: "trailing garbage",
			body: ev1 + "\nnope",
			code: http.StatusBadRequest,
			err:  `stream "transactions": request body: invalid JSON at line 2, column 2 (event 1): invalid character 'o' in literal null (expecting 'u'); nothing was written`,
		},
		{
			name: "empty body",
			body: " \n ",
			code: http.StatusBadRequest,
			err:  `request body is empty: send NDJSON (one event object per line), a JSON array of event objects, or one event object`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			stream := tt.stream
			if stream == "" {
				stream = "transactions"
			}
			code, header, body := e.post(t, stream, tt.contentType, tt.body)
			if code != tt.code {
				t.Fatalf("status %d, want %d; body %s", code, tt.code, body)
			}
			if ct := header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			if diff := cmp.Diff(tt.err, decodeError(t, body)); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if got := metric(t, e.reg, "sluice_ingest_requests_total", map[string]string{"code": strconv.Itoa(tt.code)}); got != 1 {
				t.Errorf("requests_total{code=%d} = %v, want 1", tt.code, got)
			}
			e.consume(t, 0)
		})
	}
}

func TestIngestBodyTooLarge(t *testing.T) {
	e := newEnv(t, Options{MaxBodyBytes: 100})
	want := `request body is larger than the limit of 100 bytes (http.max_body_bytes): send fewer events per request`
	for _, tc := range []struct {
		name string
		body io.Reader
	}{
		{"known length", strings.NewReader(ev1 + "\n" + ev2)},
		{"chunked", io.MultiReader(strings.NewReader(ev1+"\n"), strings.NewReader(ev2))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := e.do(t, http.MethodPost, "transactions", "application/x-ndjson", tc.body)
			if code != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d, want 413; body %s", code, body)
			}
			if diff := cmp.Diff(want, decodeError(t, body)); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
	if code, _, body := e.post(t, "transactions", "", ev1); code != http.StatusOK {
		t.Errorf("a body under the limit: status %d, want 200; body %s", code, body)
	}
	e.consume(t, 1)
}

func TestIngestMethodNotAllowed(t *testing.T) {
	e := newEnv(t, Options{})
	code, header, _ := e.do(t, http.MethodGet, "transactions", "", nil)
	if code != http.StatusMethodNotAllowed || header.Get("Allow") != "POST" {
		t.Errorf("GET: status %d Allow %q, want 405 POST", code, header.Get("Allow"))
	}
}

func TestIngestTooManyInFlight(t *testing.T) {
	e := newEnv(t, Options{MaxInFlight: 1})
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	e.cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		e.cluster.DropControl()
		once.Do(func() {
			close(entered)
			e.cluster.SleepControl(func() { <-release })
		})
		return nil, nil, false
	})

	type result struct {
		code int
		body string
	}
	first := make(chan result, 1)
	go func() {
		code, _, body := e.post(t, "transactions", "application/x-ndjson", ev1)
		first <- result{code, body}
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first request never reached Kafka")
	}

	code, header, body := e.post(t, "transactions", "application/x-ndjson", ev2)
	close(release)
	if code != http.StatusTooManyRequests || header.Get("Retry-After") != "1" {
		t.Errorf("second request: status %d Retry-After %q, want 429 1; body %s", code, header.Get("Retry-After"), body)
	}
	if diff := cmp.Diff("too many ingest requests in flight (the limit is 1); retry after 1 second", decodeError(t, body)); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
	if r := <-first; r.code != http.StatusOK {
		t.Errorf("first request: status %d, want 200; body %s", r.code, r.body)
	}
	if code, _, body := e.post(t, "transactions", "application/x-ndjson", ev2); code != http.StatusOK {
		t.Errorf("after the first finished: status %d, want 200; body %s", code, body)
	}
	if diff := cmp.Diff([]landed{{"u1", ev1}, {"u2", ev2}}, landedOf(e.consume(t, 2))); diff != "" {
		t.Errorf("records in kafka (-want +got):\n%s", diff)
	}
}

func TestIngestBrokerDown(t *testing.T) {
	e := newEnv(t, Options{ProduceTimeout: 500 * time.Millisecond})
	if code, _, body := e.post(t, "transactions", "application/x-ndjson", ev1); code != http.StatusOK {
		t.Fatalf("before the broker stopped: status %d, want 200; body %s", code, body)
	}
	e.cluster.Close()

	start := time.Now()
	code, header, body := e.post(t, "transactions", "application/x-ndjson", ev2+"\n"+`{"bad":1}`)
	if code != http.StatusServiceUnavailable || header.Get("Retry-After") != "1" {
		t.Fatalf("status %d Retry-After %q, want 503 1; body %s", code, header.Get("Retry-After"), body)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("503 took %v; the produce timeout is 500ms", took)
	}
	msg := decodeError(t, body)
	for _, part := range []string{
		`stream "transactions": producing to Kafka topic "transactions" failed: `,
		`0 of 1 valid events were acknowledged and the other 1 may or may not have been written; retry the request after 1 second (events that carry an _event_id are never counted twice`,
	} {
		if !strings.Contains(msg, part) {
			t.Errorf("error %q does not contain %q", msg, part)
		}
	}
	if got := metric(t, e.reg, "sluice_ingest_requests_total", map[string]string{"code": "503"}); got != 1 {
		t.Errorf("requests_total{code=503} = %v, want 1", got)
	}
}
