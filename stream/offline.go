package stream

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/sluicehq/sluice/connectors/kafka"
	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/featurestore/offline"
)

// SinkOptions configures the offline sink job.
type SinkOptions struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// FlushInterval bounds how long a valid event waits in memory before it
	// is written to Parquet while the stream is busy; a quiet stream flushes
	// within a second. Default 10s.
	FlushInterval time.Duration
	// FlushRows flushes once this many rows are buffered. Default 200,000.
	FlushRows int
	// CompactEvery is how often closed days' small files are compacted.
	// Default 10 minutes.
	CompactEvery time.Duration
}

// OfflineSink writes every valid event of every stream to the offline store,
// once, in the order of its partition.
type OfflineSink struct {
	job       groupJob
	sink      *offline.Sink
	producer  *kgo.Client
	opts      SinkOptions
	mu        sync.Mutex
	lastFlush time.Time
	rows      *prometheus.CounterVec
}

// NewOfflineSink builds the job; producer is used to measure lag.
func NewOfflineSink(cluster kafka.Cluster, reg *featurestore.Registry, sink *offline.Sink, producer *kgo.Client, opts SinkOptions) *OfflineSink {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	if opts.FlushInterval == 0 {
		opts.FlushInterval = 10 * time.Second
	}
	if opts.FlushRows == 0 {
		opts.FlushRows = 200_000
	}
	if opts.CompactEvery == 0 {
		opts.CompactEvery = 10 * time.Minute
	}
	s := &OfflineSink{
		sink: sink, producer: producer, opts: opts, lastFlush: time.Now(),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_offline_rows_total",
			Help: "Records seen by the offline sink, by stream and outcome (written, duplicate, invalid).",
		}, []string{"stream", "outcome"}),
	}
	opts.Registerer.MustRegister(s.rows)
	logger := opts.Logger.With("component", "offline")
	s.job = groupJob{
		name: "offline", cluster: cluster, registry: reg, h: s, logger: logger,
		maxPoll: 5000, idleTick: time.Second, layout: streamsOnly,
	}
	return s
}

// Run consumes until ctx is done, then flushes; meanwhile it compacts the
// small files of closed days.
func (s *OfflineSink) Run(ctx context.Context) error {
	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error { return s.job.run(ctx) })
	eg.Go(func() error { return s.compactLoop(ctx) })
	return eg.Wait()
}

// compactLoop compacts closed days every CompactEvery. A failed round is
// logged and tried again next time: compaction never loses rows.
func (s *OfflineSink) compactLoop(ctx context.Context) error {
	tick := time.NewTicker(s.opts.CompactEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		for _, st := range s.job.registry.Repo().Streams {
			s.sink.AddSchema(st.Schema)
		}
		stats, err := s.sink.CompactClosedDays(ctx, time.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			s.job.logger.Error("compact closed days", "err", err)
		case stats.Files > 0:
			s.job.logger.Info("compacted closed days", "files", stats.Files, "written", stats.Written,
				"rows", stats.Rows, "duration", stats.Duration)
		}
	}
}

// Lag returns how many records the sink has not written yet.
func (s *OfflineSink) Lag(ctx context.Context, reg *featurestore.Registry) (int64, error) {
	topo, err := s.job.topologyFor(reg.Repo())
	if err != nil {
		return 0, err
	}
	return lag(ctx, s.producer, topo, s.names, func(stream string) (map[int32]int64, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.sink.Resume(stream), nil
	}, nil)
}

func (s *OfflineSink) names(job *streamJob) []string { return []string{job.name} }

func (s *OfflineSink) offsets(stream string) (map[int32]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sink.Resume(stream), nil
}

func (s *OfflineSink) handle(ctx context.Context, topo *topology, recs []*kgo.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		job := topo.byTopic[r.Topic]
		if job == nil {
			continue
		}
		name := job.stream.Name
		ev, err := job.dec.Decode(r.Value)
		if err != nil {
			// The stream engine parks it in the dead-letter topic.
			s.sink.Note(name, r.Partition, r.Offset)
			s.rows.WithLabelValues(name, "invalid").Inc()
			continue
		}
		row := offline.Row{
			Values: ev.Values, Key: job.dec.Key(ev), EventID: eventID(r, ev),
			EventTime: ev.Time, Arrival: r.Timestamp.UnixMicro(), Partition: r.Partition, Offset: r.Offset,
		}
		if s.sink.Add(job.stream.Schema, row) {
			s.rows.WithLabelValues(name, "written").Inc()
		} else {
			s.sink.Note(name, r.Partition, r.Offset)
			s.rows.WithLabelValues(name, "duplicate").Inc()
		}
	}
	if s.sink.Buffered() >= s.opts.FlushRows || time.Since(s.lastFlush) >= s.opts.FlushInterval {
		return s.flushLocked(ctx)
	}
	return nil
}

func (s *OfflineSink) idle(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flushLocked(ctx)
}

func (s *OfflineSink) flushLocked(ctx context.Context) error {
	s.lastFlush = time.Now()
	return s.sink.Flush(ctx)
}
