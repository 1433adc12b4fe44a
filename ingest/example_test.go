package ingest_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/schemas"
)

// oneStream serves a single stream definition.
type oneStream struct {
	stream *featurestore.Stream
	dec    *schemas.Decoder
}

func (o oneStream) Stream(name string) (*featurestore.Stream, *schemas.Decoder, bool) {
	return o.stream, o.dec, name == o.stream.Name
}

func Example() {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "transactions"))
	if err != nil {
		panic(err)
	}
	defer cluster.Close()
	client, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		panic(err)
	}
	defer client.Close()

	schema := &schemas.Schema{
		Stream:  "transactions",
		Version: 1,
		Fields: []schemas.Field{
			{Name: "user_id", Type: schemas.String},
			{Name: "amount", Type: schemas.Float64},
			{Name: "ts", Type: schemas.Timestamp},
		},
		TimeField: "ts",
		KeyFields: []string{"user_id"},
	}
	dec, err := schemas.NewDecoder(schema)
	if err != nil {
		panic(err)
	}
	stream := &featurestore.Stream{Name: "transactions", Topic: "transactions", Entity: "user", Schema: schema}

	mux := http.NewServeMux()
	ingest.New(client, oneStream{stream, dec}, ingest.Options{}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	events := `{"user_id":"u1","amount":12.5,"ts":"2024-05-01T10:00:00Z"}
{"user_id":"u2","amount":"12,5","ts":"2024-05-01T10:00:01Z"}
`
	resp, err := srv.Client().Post(srv.URL+"/v1/streams/transactions/events", "application/x-ndjson", strings.NewReader(events))
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Print(resp.Status, "\n", string(body))
	// Output:
	// 200 OK
	// {"accepted":1,"rejected":[{"index":1,"error":"stream \"transactions\": field \"amount\": expected float64, got string \"12,5\""}]}
}
