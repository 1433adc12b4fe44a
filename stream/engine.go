package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors/kafka"
	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/featurestore/online"
	"github.com/sluicehq/sluice/featurestore/window"
)

// Options configures the stream engine.
type Options struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// MaxPollRecords bounds the records applied in one transaction.
	MaxPollRecords int
}

// Engine applies the registry's feature views to the online store.
type Engine struct {
	job      groupJob
	store    *online.Store
	producer *kgo.Client
	logger   *slog.Logger
	events   *prometheus.CounterVec
	late     *prometheus.CounterVec
	commit   prometheus.Histogram
}

// NewEngine builds an engine; producer writes dead letters.
func NewEngine(cluster kafka.Cluster, reg *featurestore.Registry, store *online.Store, producer *kgo.Client, opts Options) *Engine {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	if opts.MaxPollRecords == 0 {
		opts.MaxPollRecords = 2000
	}
	e := &Engine{
		store:    store,
		producer: producer,
		logger:   opts.Logger.With("component", "stream"),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_stream_events_total",
			Help: "Events consumed by the stream engine, by stream and outcome (applied, duplicate, dead_letter).",
		}, []string{"stream", "outcome"}),
		late: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_stream_late_dropped_total",
			Help: "Events a view dropped online because they arrived after its retention (largest window plus hop, or ttl, plus the allowed lateness); the offline store keeps them.",
		}, []string{"view"}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sluice_stream_commit_duration_seconds",
			Help:    "Time to commit one batch of state and offsets.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
	}
	opts.Registerer.MustRegister(e.events, e.late, e.commit)
	e.job = groupJob{
		name: "stream", cluster: cluster, registry: reg, h: e, logger: e.logger,
		maxPoll: opts.MaxPollRecords, idleTick: time.Second, layout: withRepartition,
	}
	return e
}

// Run consumes until ctx is done.
func (e *Engine) Run(ctx context.Context) error { return e.job.run(ctx) }

// Lag returns how many records of the registry's streams the engine has
// not applied yet.
func (e *Engine) Lag(ctx context.Context, reg *featurestore.Registry) (int64, error) {
	topo, err := e.job.topologyFor(reg.Repo())
	if err != nil {
		return 0, err
	}
	return lag(ctx, e.producer, topo, e.names, e.store.Offsets)
}

func (e *Engine) offsets(name string) (map[int32]int64, error) { return e.store.Offsets(name) }

func (e *Engine) names(job *streamJob) []string { return job.names() }

func (e *Engine) idle(context.Context) error { return nil }

func (e *Engine) handle(ctx context.Context, topo *topology, recs []*kgo.Record) error {
	for len(recs) > 0 {
		n, err := e.apply(ctx, topo, recs)
		if err != nil {
			return err
		}
		recs = recs[n:]
	}
	return nil
}

// apply applies a prefix of recs in one transaction and returns its length:
// all of them, or fewer when the transaction filled up.
func (e *Engine) apply(ctx context.Context, topo *topology, recs []*kgo.Record) (int, error) {
	for size := len(recs); ; size = (size + 1) / 2 {
		err := e.applyAll(ctx, topo, recs[:size])
		if err == nil {
			return size, nil
		}
		if !errors.Is(err, online.ErrBatchFull) || size == 1 {
			return 0, err
		}
	}
}

type outcome struct{ applied, duplicate, dead map[string]float64 }

func (e *Engine) applyAll(ctx context.Context, topo *topology, recs []*kgo.Record) error {
	b := e.store.NewBatch()
	defer b.Discard()
	// Dead letters, re-keyed events and changelog entries are written
	// before the offsets that consumed them commit: a crash in between
	// writes them again; re-keyed copies are then dropped by event id, and
	// changelog entries hold absolute values.
	var forward []*kgo.Record
	out := outcome{map[string]float64{}, map[string]float64{}, map[string]float64{}}
	progress := map[string]map[int32]int64{} // committed offsets, by progress name
	for _, r := range recs {
		job := topo.byTopic[r.Topic]
		if job == nil {
			continue
		}
		if err := e.applyOne(b, job, r, progress, &forward, out); err != nil {
			return err
		}
	}
	for _, c := range b.Changes() {
		rec := &kgo.Record{Topic: kafka.ChangelogTopic(c.View), Key: c.Key, Value: c.Value}
		if c.ExpiresAt != 0 {
			rec.Headers = []kgo.RecordHeader{{Key: kafka.HeaderExpiresAt, Value: []byte(strconv.FormatUint(c.ExpiresAt, 10))}}
		}
		forward = append(forward, rec)
	}
	if len(forward) > 0 {
		if err := e.producer.ProduceSync(ctx, forward...).FirstErr(); err != nil {
			return fmt.Errorf("write dead letters, repartitioned events and changelogs: %w", err)
		}
	}
	start := time.Now()
	if err := b.Commit(); err != nil {
		return err
	}
	e.commit.Observe(time.Since(start).Seconds())
	for s, n := range out.applied {
		e.events.WithLabelValues(s, "applied").Add(n)
	}
	for s, n := range out.duplicate {
		e.events.WithLabelValues(s, "duplicate").Add(n)
	}
	for s, n := range out.dead {
		e.events.WithLabelValues(s, "dead_letter").Add(n)
	}
	return nil
}

// applyOne takes one record to every part of its job that has not had it
// yet: each view (a view version that is new replays the log: its
// backfill), each re-keyed view, and the job itself (dead letters and
// metrics, once per record).
func (e *Engine) applyOne(b *online.Batch, job *streamJob, r *kgo.Record, progress map[string]map[int32]int64, forward *[]*kgo.Record, out outcome) error {
	due := func(name string) (bool, error) {
		offs, ok := progress[name]
		if !ok {
			var err error
			if offs, err = e.store.Offsets(name); err != nil {
				return false, err
			}
			progress[name] = offs
		}
		if r.Offset < offs[r.Partition] {
			return false, nil
		}
		offs[r.Partition] = r.Offset + 1
		return true, b.SetOffset(name, r.Partition, r.Offset+1)
	}
	name := job.stream.Name
	live, err := due(job.name)
	if err != nil {
		return err
	}
	ev, decodeErr := job.dec.Decode(r.Value)
	if decodeErr != nil {
		if live {
			*forward = append(*forward, deadLetter(r, name, decodeErr))
			out.dead[name]++
		}
		// Views still mark the record consumed.
		for _, n := range job.names()[1:] {
			if _, err := due(n); err != nil {
				return err
			}
		}
		return nil
	}
	id := eventID(r, ev)
	arrival, seq := job.position(r)
	applied, dup := false, false
	for _, cv := range job.views {
		vk := viewKey(cv)
		ok, err := due(vk)
		if err != nil || !ok {
			if err != nil {
				return err
			}
			continue
		}
		seen, err := b.Seen(vk, id)
		if err != nil {
			return err
		}
		if seen {
			dup = true
			continue
		}
		if err := b.MarkSeen(vk, id); err != nil {
			return err
		}
		applied = true
		if cv.Retention > 0 && ev.Time < arrival-cv.Retention.Microseconds() {
			// Too late for every window at any time after its arrival.
			e.late.WithLabelValues(cv.View.Name).Inc()
			continue
		}
		key, values, pass := cv.Apply(ev)
		if !pass {
			continue
		}
		we := window.Event{Time: ev.Time, Arrival: arrival, Seq: seq, Values: values}
		// Kept for two retentions, so that reads at any t within one
		// retention of now still hold their whole window.
		if err := b.Put(cv.View.Name, cv.View.Version, key, &we, 2*cv.Retention); err != nil {
			return err
		}
	}
	for _, cv := range job.reroute {
		ok, err := due(rerouteKey(cv))
		if err != nil {
			return err
		}
		if ok {
			*forward = append(*forward, rerouted(r, cv, ev, id, arrival))
		}
	}
	if live && !job.internal {
		switch {
		case dup && !applied:
			out.duplicate[name]++
		default:
			out.applied[name]++
		}
	}
	return nil
}

// lag sums, over every partition of a topology's topics and every progress
// name of its job, the records between the committed offset and the end of
// the partition.
func lag(ctx context.Context, cl *kgo.Client, topo *topology, names func(*streamJob) []string, committed func(string) (map[int32]int64, error)) (int64, error) {
	if len(topo.topics) == 0 {
		return 0, nil
	}
	ends, err := kafka.EndOffsets(ctx, cl, topo.topics...)
	if err != nil {
		return 0, err
	}
	var total int64
	for topic, job := range topo.byTopic {
		for _, name := range names(job) {
			offs, err := committed(name)
			if err != nil {
				return 0, err
			}
			for p, end := range ends[topic] {
				total += max(0, end-offs[p])
			}
		}
	}
	return total, nil
}
