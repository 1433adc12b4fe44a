package stream

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors/kafka"
	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/featurestore/online"
)

// ReplicaOptions configures a serve replica.
type ReplicaOptions struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// ID names the replica's consumer group; every replica reads every
	// changelog partition, so each needs its own. Keep it stable across
	// restarts of one replica.
	ID string
}

// Replica builds a serve replica's online store from the views'
// changelogs, committing each batch with its changelog offsets.
type Replica struct {
	job      groupJob
	store    *online.Store
	producer *kgo.Client
	entries  prometheus.Counter
}

// NewReplica builds the job; client is used to measure lag.
func NewReplica(cluster kafka.Cluster, reg *featurestore.Registry, store *online.Store, client *kgo.Client, opts ReplicaOptions) *Replica {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	r := &Replica{
		store: store, producer: client,
		entries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_replica_changelog_entries_total",
			Help: "Changelog entries a serve replica applied.",
		}),
	}
	opts.Registerer.MustRegister(r.entries)
	r.job = groupJob{
		name: "serve-" + opts.ID, cluster: cluster, registry: reg, h: r,
		logger: opts.Logger.With("component", "replica"), maxPoll: 2000, idleTick: time.Second, layout: changelogs,
	}
	return r
}

// Run follows the changelogs until ctx is done.
func (r *Replica) Run(ctx context.Context) error { return r.job.run(ctx) }

// Lag returns how many changelog entries the replica has not applied yet.
func (r *Replica) Lag(ctx context.Context, reg *featurestore.Registry) (int64, error) {
	topo, err := r.job.topologyFor(reg.Repo())
	if err != nil {
		return 0, err
	}
	return lag(ctx, r.producer, topo, r.names, r.store.Offsets, nil)
}

func (r *Replica) offsets(name string) (map[int32]int64, error) { return r.store.Offsets(name) }

func (r *Replica) names(job *streamJob) []string { return []string{job.name} }

func (r *Replica) idle(context.Context) error { return nil }

// readsCommitted: workers write the changelogs in transactions.
func (r *Replica) readsCommitted() {}

// changeExpiry returns when a changelog record's entry expires (Unix
// seconds, 0: never), and whether it has already: the worker that wrote it
// no longer holds it either, so it is not applied.
func changeExpiry(rec *kgo.Record) (uint64, bool) {
	exp, _ := strconv.ParseUint(header(rec, kafka.HeaderExpiresAt), 10, 64)
	return exp, exp != 0 && exp <= uint64(time.Now().Unix())
}

func (r *Replica) handle(_ context.Context, topo *topology, recs []*kgo.Record) error {
	b := r.store.NewBatch()
	defer b.Discard()
	applied := 0
	for _, rec := range recs {
		job := topo.byTopic[rec.Topic]
		if job == nil {
			continue
		}
		if rec.Attrs.IsControl() {
			// A transaction marker: nothing to apply, but consumed.
		} else if exp, expired := changeExpiry(rec); !expired {
			if err := b.Apply(rec.Key, rec.Value, exp); err != nil {
				return err
			}
			applied++
		}
		if err := b.SetOffset(job.name, rec.Partition, rec.Offset+1); err != nil {
			return err
		}
	}
	if err := b.Commit(); err != nil {
		return err
	}
	r.entries.Add(float64(applied))
	return nil
}
