package ingest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/schemas"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// schemaVersion is the version of the test schema, so the header is not a
// default.
const schemaVersion = 3

// testNow is the clock of the handler under test.
var testNow = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// testStreams serves fixed stream definitions.
type testStreams map[string]*featurestore.Stream

func (s testStreams) Stream(name string) (*featurestore.Stream, *schemas.Decoder, bool) {
	st, ok := s[name]
	if !ok {
		return nil, nil, false
	}
	dec, err := schemas.NewDecoder(st.Schema)
	if err != nil {
		panic(err)
	}
	return st, dec, true
}

// transactions is the stream of the tests: user_id string key, amount
// float64, ts timestamp, country nullable string.
func transactions() *featurestore.Stream {
	return &featurestore.Stream{
		Name:   "transactions",
		Topic:  "transactions",
		Entity: "user",
		Schema: &schemas.Schema{
			Stream:  "transactions",
			Version: schemaVersion,
			Fields: []schemas.Field{
				{Name: "user_id", Type: schemas.String},
				{Name: "amount", Type: schemas.Float64},
				{Name: "ts", Type: schemas.Timestamp},
				{Name: "country", Type: schemas.String, Nullable: true},
			},
			TimeField: "ts",
			KeyFields: []string{"user_id"},
		},
	}
}

// env is a handler over a fresh in-process Kafka cluster.
type env struct {
	cluster *kfake.Cluster
	client  *kgo.Client
	srv     *httptest.Server
	reg     *prometheus.Registry
}

func newEnv(t testing.TB, opts Options) *env {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(8, "transactions"))
	if err != nil {
		t.Fatalf("start kafka: %v", err)
	}
	t.Cleanup(cluster.Close)
	client, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		t.Fatalf("new kafka client: %v", err)
	}
	t.Cleanup(client.Close)
	e := &env{cluster: cluster, client: client, reg: prometheus.NewRegistry()}
	opts.Registerer = e.reg
	if opts.Now == nil {
		opts.Now = func() time.Time { return testNow }
	}
	h := New(client, testStreams{"transactions": transactions()}, opts)
	mux := http.NewServeMux()
	h.Register(mux)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

// post sends body to the events endpoint of stream.
func (e *env) post(t testing.TB, stream, contentType, body string) (int, http.Header, string) {
	t.Helper()
	return e.do(t, http.MethodPost, stream, contentType, strings.NewReader(body))
}

func (e *env) do(t testing.TB, method, stream, contentType string, body io.Reader) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+"/v1/streams/"+stream+"/events", body)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, req.URL, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	return resp.StatusCode, resp.Header, string(out)
}

// decodeResponse parses a 200 body strictly.
func decodeResponse(t testing.TB, body string) Response {
	t.Helper()
	var r Response
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("decode response %q: %v", body, err)
	}
	return r
}

// decodeError parses an error body strictly.
func decodeError(t testing.TB, body string) string {
	t.Helper()
	var r ErrorResponse
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("decode error response %q: %v", body, err)
	}
	return r.Error
}

// consume reads exactly n records of the transactions topic from the start,
// and checks that no more arrive shortly after.
func (e *env) consume(t testing.TB, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(e.cluster.ListenAddrs()...),
		kgo.ConsumeTopics("transactions"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	if err != nil {
		t.Fatalf("new consumer: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(recs), n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		recs = append(recs, fs.Records()...)
	}
	extra, cancelExtra := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancelExtra()
	if more := cl.PollFetches(extra).Records(); len(more) > 0 {
		t.Fatalf("consumed %d records, want %d", len(recs)+len(more), n)
	}
	return recs
}

// metric returns the value of the series name{labels} in reg: a counter's
// value or a histogram's sample count; 0 when absent.
func metric(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !hasLabels(m, labels) {
				continue
			}
			if m.GetHistogram() != nil {
				return float64(m.GetHistogram().GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	if len(m.GetLabel()) != len(want) {
		return false
	}
	for _, l := range m.GetLabel() {
		if want[l.GetName()] != l.GetValue() {
			return false
		}
	}
	return true
}
