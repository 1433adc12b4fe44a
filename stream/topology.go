package stream

import (
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors/kafka"
	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/schemas"
)

// topology is what one registry version asks the stream jobs to run.
type topology struct {
	byTopic map[string]*streamJob
	topics  []string
}

// streamJob is one stream with its decoder and the views fed from it.
type streamJob struct {
	stream *featurestore.Stream
	dec    *schemas.Decoder
	views  []*featurestore.CompiledView
}

func newTopology(repo *featurestore.Repo) (*topology, error) {
	t := &topology{byTopic: map[string]*streamJob{}}
	for _, st := range repo.Streams {
		dec, err := schemas.NewDecoder(st.Schema)
		if err != nil {
			return nil, fmt.Errorf("stream %q: %w", st.Name, err)
		}
		job := &streamJob{stream: st, dec: dec}
		for _, v := range repo.ViewsOf(st.Name) {
			cv, err := featurestore.Compile(repo, v.Name)
			if err != nil {
				return nil, err
			}
			job.views = append(job.views, cv)
		}
		t.byTopic[st.Topic] = job
		t.topics = append(t.topics, st.Topic)
	}
	return t, nil
}

// eventID returns the id of a record's event: the sluice-event-id header,
// else the producer's _event_id field, else one derived from the record's
// position, which is stable across replays.
func eventID(r *kgo.Record, ev *schemas.Event) string {
	for _, h := range r.Headers {
		if h.Key == kafka.HeaderEventID && len(h.Value) > 0 {
			return string(h.Value)
		}
	}
	if ev.ID != "" {
		return ev.ID
	}
	return "p" + strconv.Itoa(int(r.Partition)) + "-" + strconv.FormatInt(r.Offset, 10)
}

// arrival returns the record's arrival time in microseconds.
func arrival(r *kgo.Record) int64 { return r.Timestamp.UnixMicro() }

// deadLetter builds the DLQ record for a record that failed validation.
func deadLetter(r *kgo.Record, stream string, err error) *kgo.Record {
	headers := append([]kgo.RecordHeader(nil), r.Headers...)
	headers = append(headers,
		kgo.RecordHeader{Key: kafka.HeaderError, Value: []byte(err.Error())},
		kgo.RecordHeader{Key: kafka.HeaderSourceTopic, Value: []byte(r.Topic)},
		kgo.RecordHeader{Key: kafka.HeaderSourcePartition, Value: []byte(strconv.Itoa(int(r.Partition)))},
		kgo.RecordHeader{Key: kafka.HeaderSourceOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
	)
	return &kgo.Record{Topic: kafka.DLQTopic(stream), Key: r.Key, Value: r.Value, Headers: headers}
}

// retryDelay is how long a job waits before retrying after an error.
const retryDelay = time.Second
