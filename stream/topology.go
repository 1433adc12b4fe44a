package stream

import (
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors/kafka"
	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/featurestore/window"
	"github.com/sluicehq/sluice/schemas"
)

// topology is what one registry version asks a stream job to run.
type topology struct {
	byTopic map[string]*streamJob
	topics  []string
}

// streamJob consumes one topic: a stream's, or a repartition topic that
// carries a stream's events re-keyed for one view.
type streamJob struct {
	// name keys the job's offsets and seen event ids: the stream's name, or
	// "repartition.<view>".
	name   string
	stream *featurestore.Stream
	dec    *schemas.Decoder
	views  []*featurestore.CompiledView // applied from this topic
	// viewKeys holds viewKey of each view, computed once: records use them
	// on the hot path.
	viewKeys []string
	// reroute lists the views keyed by another entity, whose events this
	// job re-keys to their repartition topics.
	reroute []*featurestore.CompiledView
	// internal is true for a repartition topic: the event's source position
	// and arrival time come from headers.
	internal bool
}

// viewKey names the offsets and seen ids of one view version: each keeps
// its own, so a new version starts from the beginning of the log and
// catches up (its backfill) while the others go on.
func viewKey(cv *featurestore.CompiledView) string {
	return "view." + cv.View.Name + "." + strconv.Itoa(cv.View.Version)
}

// rerouteKey names how far a stream job has re-keyed a view's events.
func rerouteKey(cv *featurestore.CompiledView) string {
	return "reroute." + cv.View.Name + "." + strconv.Itoa(cv.View.Version)
}

// names lists every progress key of the job: its own (dead letters,
// metrics) and one per view it applies or re-keys.
func (j *streamJob) names() []string {
	out := []string{j.name}
	out = append(out, j.viewKeys...)
	for _, cv := range j.reroute {
		out = append(out, rerouteKey(cv))
	}
	return out
}

// newTopology lays out the jobs of repo. With repartition, views keyed by
// another entity than their stream's are fed through repartition topics;
// without, only the stream topics are read (the offline sink).
func newTopology(repo *featurestore.Repo, repartition bool) (*topology, error) {
	t := &topology{byTopic: map[string]*streamJob{}}
	for _, st := range repo.Streams {
		dec, err := schemas.NewDecoder(st.Schema)
		if err != nil {
			return nil, fmt.Errorf("stream %q: %w", st.Name, err)
		}
		job := &streamJob{name: st.Name, stream: st, dec: dec}
		t.add(st.Topic, job)
		if !repartition {
			continue
		}
		for _, v := range repo.ViewsOf(st.Name) {
			cv, err := featurestore.Compile(repo, v.Name)
			if err != nil {
				return nil, err
			}
			if !repo.Repartitioned(v) {
				job.views, job.viewKeys = append(job.views, cv), append(job.viewKeys, viewKey(cv))
				continue
			}
			job.reroute = append(job.reroute, cv)
			t.add(kafka.RepartitionTopic(v.Name), &streamJob{
				name: jobName(repo, v), stream: st, dec: dec,
				views: []*featurestore.CompiledView{cv}, viewKeys: []string{viewKey(cv)}, internal: true,
			})
		}
	}
	return t, nil
}

// withRepartition lays out the stream engine's topics; streamsOnly the
// offline sink's.
func withRepartition(r *featurestore.Repo) (*topology, error) { return newTopology(r, true) }
func streamsOnly(r *featurestore.Repo) (*topology, error)     { return newTopology(r, false) }

// changelogs lays out a serve replica's topics: every view's changelog.
func changelogs(r *featurestore.Repo) (*topology, error) {
	t := &topology{byTopic: map[string]*streamJob{}}
	for name := range r.Views {
		t.add(kafka.ChangelogTopic(name), &streamJob{name: "changelog." + name})
	}
	return t, nil
}

func (t *topology) add(topic string, job *streamJob) {
	t.byTopic[topic] = job
	t.topics = append(t.topics, topic)
}

// eventID returns the id of a record's event: the sluice-event-id header,
// else the producer's _event_id field, else one derived from the record's
// position, which is stable across replays.
func eventID(r *kgo.Record, ev *schemas.Event) string {
	id, _ := recordID(r, ev)
	return id
}

// recordID returns an event's id and whether it was derived from the
// record's own partition and offset. A derived id names one record and no
// other, so it can never arrive twice: the offsets already keep a record
// from being applied twice, and a dedupe lookup would find nothing.
func recordID(r *kgo.Record, ev *schemas.Event) (string, bool) {
	if id := header(r, kafka.HeaderEventID); id != "" {
		return id, false
	}
	if ev.ID != "" {
		return ev.ID, false
	}
	return "p" + strconv.Itoa(int(r.Partition)) + "-" + strconv.FormatInt(r.Offset, 10), true
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// position returns an event's arrival time (µs) and its Seq: from the
// record itself, or, for a repartitioned record, from the headers that
// carry the source record's.
func (j *streamJob) position(r *kgo.Record) (arrival, seq int64) {
	if j.internal {
		a, err1 := strconv.ParseInt(header(r, kafka.HeaderArrivalTime), 10, 64)
		p, err2 := strconv.ParseInt(header(r, kafka.HeaderSourcePartition), 10, 32)
		o, err3 := strconv.ParseInt(header(r, kafka.HeaderSourceOffset), 10, 64)
		if err1 == nil && err2 == nil && err3 == nil {
			return a, window.SeqOf(int32(p), o)
		}
	}
	return r.Timestamp.UnixMicro(), window.SeqOf(r.Partition, r.Offset)
}

// rerouted builds the record that carries an event to a view's
// repartition topic.
func rerouted(r *kgo.Record, cv *featurestore.CompiledView, ev *schemas.Event, id string, arrival int64) *kgo.Record {
	return &kgo.Record{
		Topic: kafka.RepartitionTopic(cv.View.Name), Key: []byte(cv.Key(ev)), Value: r.Value,
		Headers: []kgo.RecordHeader{
			{Key: kafka.HeaderEventID, Value: []byte(id)},
			{Key: kafka.HeaderArrivalTime, Value: []byte(strconv.FormatInt(arrival, 10))},
			{Key: kafka.HeaderSourcePartition, Value: []byte(strconv.Itoa(int(r.Partition)))},
			{Key: kafka.HeaderSourceOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
		},
	}
}

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

// jobName names the progress of the job that applies a view: its stream's,
// or its repartition topic's.
func jobName(repo *featurestore.Repo, v *featurestore.View) string {
	if repo.Repartitioned(v) {
		return "repartition." + v.Name
	}
	return v.Source
}

// CaughtUp reports whether a view version has applied every record that
// the job feeding it has consumed, by the committed offsets that offsets
// returns (an online store's Offsets). Until a new version has, reads are
// served from the view's previous version (Repo.Previous): while the new
// one replays, its partitions' records wait behind the replay, so the
// previous version's state is as current as applying it could make it.
//
// A view keyed by another entity than its stream's also needs ready (the
// registry's Ready) to say so: its repartition topic's partitions fill
// from the stream's, which other workers may re-key, so only the fleet's
// marks tell when its history is complete.
func CaughtUp(repo *featurestore.Repo, cv *featurestore.CompiledView, offsets func(name string) (map[int32]int64, error), ready func(view string, version int) bool) (bool, error) {
	return caughtUp(repo, cv, offsets, ready, nil)
}

// caughtUp is CaughtUp over the partitions that counts, when set, says
// count.
func caughtUp(repo *featurestore.Repo, cv *featurestore.CompiledView, offsets func(name string) (map[int32]int64, error), ready func(view string, version int) bool, counts func(topic string, p int32) bool) (bool, error) {
	if repo.Repartitioned(cv.View) && (ready == nil || !ready(cv.View.Name, cv.View.Version)) {
		return false, nil
	}
	job, err := offsets(jobName(repo, cv.View))
	if err != nil {
		return false, err
	}
	view, err := offsets(viewKey(cv))
	if err != nil {
		return false, err
	}
	topic := jobTopic(repo, cv.View)
	for p, next := range job {
		if counts != nil && !counts(topic, p) {
			continue
		}
		if view[p] < next {
			return false, nil
		}
	}
	return true, nil
}

// jobTopic is the topic of the job that applies a view.
func jobTopic(repo *featurestore.Repo, v *featurestore.View) string {
	if repo.Repartitioned(v) {
		return kafka.RepartitionTopic(v.Name)
	}
	if st := repo.Streams[v.Source]; st != nil {
		return st.Topic
	}
	return ""
}
