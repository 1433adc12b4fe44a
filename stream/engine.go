package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors/kafka"
	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/featurestore/online"
	"github.com/sluicehq/sluice/featurestore/window"
	"github.com/sluicehq/sluice/schemas"
)

// Options configures the stream engine.
type Options struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// MaxPollRecords bounds the records applied in one transaction.
	MaxPollRecords int
	// StateCacheEntities bounds the entity states held in memory
	// (default DefaultStateCacheEntities).
	StateCacheEntities int
	// History, when set, reads the offline store: a view version that has
	// consumed nothing is backfilled from it instead of replaying the
	// stream's topic.
	History HistoryFunc
}

// Engine applies the registry's feature views to the online store.
type Engine struct {
	job      groupJob
	cluster  kafka.Cluster
	store    *online.Store
	producer *kgo.Client
	logger   *slog.Logger
	events   *prometheus.CounterVec
	late     *prometheus.CounterVec
	commit   prometheus.Histogram
	cache    *stateCache
	history  HistoryFunc
	// restoredEntries counts changelog entries applied to restore state.
	restoredEntries prometheus.Counter
	// backfilled counts offline history rows applied to new view versions.
	backfilled *prometheus.CounterVec
	// progress holds, per progress name, the next offset of each partition
	// as committed or in flight; a name missing is read from the store.
	progress map[string]map[int32]int64
	// owned is the partitions the engine's consumer owns.
	owned ownership
	// flights are the batches being committed while the next one is
	// applied, oldest first (at most maxFlights). Only the goroutine that
	// applies batches uses the list.
	flights []*flight
	// builds are the backfills in progress (backfill.go). Only the
	// goroutine that applies batches, and the consumer's callbacks, which
	// never run beside it, use the list.
	builds []*building
	// nBuilds is len(builds), for building.
	nBuilds atomic.Int32
	// failures counts the failures of handle and idle since a batch last
	// committed (failedAgain).
	failures int
	// topo is the topology being consumed (set by prepare), and readyAt
	// when markReady last looked at it.
	topo    *topology
	readyAt time.Time
	// rerouted holds, per view version keyed by another entity, the end
	// offsets of its repartition topic when the engine first saw the
	// stream re-keyed on every partition (reroutedEnds).
	rerouted map[versionKey]map[int32]int64
	// member is the consumer the engine works under (txn.go); txn, made
	// by openTxn, writes the changelogs in transactions named txnID.
	member atomic.Pointer[groupMember]
	txnMu  sync.Mutex
	txn    *kgo.Client
	txnID  string
	// sealed holds the changelog positions that the engine's last
	// transaction set: its commit marker lies at the position, so the
	// next batch's records start just after it (advancedPositions). The
	// batches in flight read and set it in turn; openTxn clears it, which
	// happens only while none is committing (a failed transaction fails
	// the batches after it before they write).
	sealedMu sync.Mutex
	sealed   map[sourceAt]int64
}

// maxFlights is how many batches may be on their way to the store while
// the next one is applied. Two let one batch's changelog transaction
// overlap the store commit of the batch before, which takes as long.
const maxFlights = 2

// flight is a batch on its way to the store: its dead letters and
// changelog are produced, after those of the batch before, then its
// transaction commits, after that of the batch before.
type flight struct {
	logged chan struct{}
	logErr error // set before logged closes
	done   chan struct{}
	err    error // set before done closes
	// batch is the state cache's number of the batch (stateCache.seal).
	batch uint64
	// seen holds the event ids the batch marked seen: the next batches
	// are applied before they are in the store.
	seen map[seenID]struct{}
}

// errBatchBefore fails a batch in flight whose batch before failed: its
// changes build on that one's.
var errBatchBefore = errors.New("the batch before failed")

// seenID is an event id under a progress name.
type seenID struct{ ns, id string }

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
		cluster:  cluster,
		history:  opts.History,
		store:    store,
		producer: producer,
		restoredEntries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_stream_restored_entries_total",
			Help: "Changelog entries applied to the state of partitions this worker was assigned: restored, when it held no state for them, or caught up with what another worker wrote since it held them.",
		}),
		cache: newStateCache(opts.StateCacheEntities),
		backfilled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_stream_backfilled_rows_total",
			Help: "Offline store rows a new feature view version took from the Parquet history before consuming its stream.",
		}, []string{"view"}),
		logger: opts.Logger.With("component", "stream"),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_stream_events_total",
			Help: "Events consumed by the stream engine, by stream and outcome (applied, duplicate, dead_letter).",
		}, []string{"stream", "outcome"}),
		late: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_stream_late_dropped_total",
			Help: "Events that arrived too late for a view's windowed features (older than its retention: largest window plus hop, or ttl, plus the allowed lateness). Windowed values drop them online; lifetime aggregates still take them; the offline store keeps them.",
		}, []string{"view"}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sluice_stream_commit_duration_seconds",
			Help:    "Time to commit one batch of state and offsets.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
	}
	opts.Registerer.MustRegister(e.events, e.late, e.commit, e.restoredEntries, e.backfilled)
	e.job = groupJob{
		name: "stream", cluster: cluster, registry: reg, h: e, logger: e.logger,
		maxPoll: opts.MaxPollRecords, idleTick: time.Second, layout: withRepartition,
	}
	return e
}

// Run consumes until ctx is done.
func (e *Engine) Run(ctx context.Context) error {
	defer e.closeTxn()
	return e.job.run(ctx)
}

// Lag returns how many records of the registry's streams the engine has
// not applied yet.
func (e *Engine) Lag(ctx context.Context, reg *featurestore.Registry) (int64, error) {
	topo, err := e.job.topologyFor(reg.Repo())
	if err != nil {
		return 0, err
	}
	return lag(ctx, e.producer, topo, e.names, e.store.Offsets, e.owned.counts)
}

// CaughtUp is the package's CaughtUp on the engine's store, over the
// partitions the engine owns.
func (e *Engine) CaughtUp(repo *featurestore.Repo, cv *featurestore.CompiledView) (bool, error) {
	return caughtUp(repo, cv, e.store.Offsets, e.job.registry.Ready, e.owned.counts)
}

// assigned records partitions the engine's consumer now owns.
func (e *Engine) assigned(m map[string][]int32) { e.owned.assign(m) }

// revoked forgets partitions the engine's consumer no longer owns.
func (e *Engine) revoked(m map[string][]int32) {
	e.owned.revoke(m)
	e.dropBuilds(m)
}

// ownedPartitions lists the partitions of a topic the engine's consumer
// owns. A failed batch leaves the engine holding only what its store
// committed (settle), so the consumer may rewind to it (rewinder).
func (e *Engine) ownedPartitions(topic string) []int32 { return e.owned.owned(topic) }

// failedAgain counts a failure of handle or idle, and returns how many
// there were since a batch last committed or the count was cleared.
func (e *Engine) failedAgain() int {
	e.failures++
	return e.failures
}

func (e *Engine) clearFailures() { e.failures = 0 }

func (e *Engine) offsets(name string) (map[int32]int64, error) { return e.store.Offsets(name) }

func (e *Engine) names(job *streamJob) []string { return job.names() }

// idle waits for the batches in flight: the job is between polls,
// stopping, or giving partitions up.
func (e *Engine) idle(ctx context.Context) error {
	if err := e.settle(); err != nil {
		return err
	}
	// While a backfill goes on, polls come back empty every few
	// milliseconds: the marks are then looked at as often as handle does.
	if !e.building() || time.Since(e.readyAt) >= readyEvery {
		e.markReady(ctx, e.topo)
	}
	return nil
}

// settle waits for every batch in flight to commit. When one failed, every
// state and offset held in memory is forgotten, since they include its
// changes, and its error returned.
func (e *Engine) settle() error {
	var err error
	for _, f := range e.flights {
		<-f.done
		if err == nil {
			err = f.err
		}
	}
	last := len(e.flights) - 1
	if last < 0 {
		return nil
	}
	upTo := e.flights[last].batch
	e.flights = nil
	if err != nil {
		e.forget()
		return err
	}
	e.landed(upTo)
	return nil
}

// landed records that the batches up to the state cache's number upTo
// have committed.
func (e *Engine) landed(upTo uint64) {
	e.failures = 0
	e.cache.committed(upTo)
}

// makeRoom waits until fewer than maxFlights batches are in flight, and
// lets go of those that have committed.
func (e *Engine) makeRoom() error {
	for len(e.flights) > 0 {
		f := e.flights[0]
		if len(e.flights) >= maxFlights {
			<-f.done
		}
		select {
		case <-f.done:
		default:
			return nil
		}
		if f.err != nil {
			return e.settle()
		}
		e.flights = e.flights[1:]
		e.landed(f.batch)
	}
	return nil
}

// forget drops the states and offsets held in memory: they are read from
// the store when next needed. No batch may be in flight.
func (e *Engine) forget() {
	e.cache.reset()
	e.progress = nil
}

// committedProgress returns the next offsets under a progress name as
// committed or in flight.
func (e *Engine) committedProgress(name string) (map[int32]int64, error) {
	if offs, ok := e.progress[name]; ok {
		return offs, nil
	}
	offs, err := e.store.Offsets(name)
	if err != nil {
		return nil, err
	}
	if e.progress == nil {
		e.progress = map[string]map[int32]int64{}
	}
	e.progress[name] = offs
	return offs, nil
}

func (e *Engine) handle(ctx context.Context, topo *topology, recs []*kgo.Record) error {
	a := decodeAhead(topo, recs)
	defer a.halt()
	for done := 0; done < len(recs); {
		n, err := e.apply(ctx, topo, recs, a, done)
		if err != nil {
			return err
		}
		done += n
	}
	if time.Since(e.readyAt) >= readyEvery {
		e.markReady(ctx, topo)
	}
	return nil
}

// apply applies a prefix of recs[from:], decoded by a, in one transaction
// and returns its length: all of them, or fewer when the transaction
// filled up.
func (e *Engine) apply(ctx context.Context, topo *topology, recs []*kgo.Record, a *ahead, from int) (int, error) {
	for size := len(recs) - from; ; size = (size + 1) / 2 {
		err := e.applyAll(ctx, topo, recs[:from+size], a, from)
		if err == nil {
			return size, nil
		}
		if !errors.Is(err, online.ErrBatchFull) || size == 1 {
			return 0, err
		}
	}
}

type outcome struct{ applied, duplicate, dead map[string]float64 }

// progressAt is one partition's offset under a progress name.
type progressAt struct {
	name      string
	partition int32
}

// batch is what one transaction collects besides the store's own batch.
type batch struct {
	b        *online.Batch
	progress map[string]map[int32]int64 // committed offsets, by progress name
	forward  []*kgo.Record              // dead letters and re-keyed events
	logs     []online.Change            // changelog entries beyond the state's
	touched  map[*streamJob]map[int32]bool
	moved    map[progressAt]bool // offsets the batch advanced
	out      outcome
	arrival  int64 // the latest arrival time, µs
	seen     map[seenID]struct{}
	consumed map[string]map[int32]int64 // next offsets, by topic
}

// applyAll applies recs[from:] as one batch and hands it to a goroutine that
// produces its changelog and commits it, while the caller goes on with the
// next batch; fewer than maxFlights batches may be in flight then (the
// oldest is waited for). A batch that fails before that leaves the engine
// as it was.
func (e *Engine) applyAll(ctx context.Context, topo *topology, recs []*kgo.Record, a *ahead, from int) (err error) {
	bt := &batch{
		b:        e.store.NewBatch(),
		progress: map[string]map[int32]int64{},
		touched:  map[*streamJob]map[int32]bool{},
		moved:    map[progressAt]bool{},
		out:      outcome{map[string]float64{}, map[string]float64{}, map[string]float64{}},
		seen:     map[seenID]struct{}{},
		consumed: map[string]map[int32]int64{},
	}
	handed := false
	defer func() {
		if handed {
			return
		}
		bt.b.Discard()
		// The states the batch changed may hold the changes of the
		// batches in flight too: they must be in the store before those
		// are read from it again. Their failure wins: a full batch is
		// retried smaller, which must not happen over a batch that was
		// lost.
		if serr := e.settle(); serr != nil {
			err = serr
		}
		e.cache.discard()
	}()
	for i := from; i < len(recs); i++ {
		r := recs[i]
		job := topo.byTopic[r.Topic]
		if job == nil {
			continue
		}
		if bt.touched[job] == nil {
			bt.touched[job] = map[int32]bool{}
		}
		bt.touched[job][r.Partition] = true
		if bt.consumed[r.Topic] == nil {
			bt.consumed[r.Topic] = map[int32]int64{}
		}
		bt.consumed[r.Topic][r.Partition] = r.Offset + 1
		bt.b.SetPartition(r.Partition)
		ev, decodeErr := a.get(i)
		if err := e.applyOne(bt, job, r, ev, decodeErr); err != nil {
			return err
		}
		bt.arrival = max(bt.arrival, r.Timestamp.UnixMicro())
	}
	if err := e.cache.flush(bt.b, bt.arrival); err != nil {
		return err
	}
	for at := range bt.moved {
		if err := bt.b.SetOffset(at.name, at.partition, bt.progress[at.name][at.partition]); err != nil {
			return err
		}
	}
	produce := bt.records()
	// Reads see the batch from now on, while those before it may still be
	// committing: all hold values of acknowledged records only, which a
	// batch that fails to commit gives again when it is applied again.
	if err := bt.b.Stage(); err != nil {
		return err
	}
	if err := e.makeRoom(); err != nil {
		return err
	}
	if e.progress == nil {
		e.progress = map[string]map[int32]int64{}
	}
	for name, offs := range bt.progress {
		e.progress[name] = offs
	}
	var before *flight
	if n := len(e.flights); n > 0 {
		before = e.flights[n-1]
	}
	f := &flight{logged: make(chan struct{}), done: make(chan struct{}), batch: e.cache.seal(), seen: bt.seen}
	e.flights, handed = append(e.flights, f), true
	go func() {
		defer close(f.done)
		f.err = e.commitBatch(ctx, bt, produce, before, f)
	}()
	return nil
}

// commitBatch produces a batch's dead letters and re-keyed events, then
// its changelog records in a transaction (logBatch), then commits its
// store transaction once the batch before (before, nil when none) has
// committed its own. f is the batch's flight.
func (e *Engine) commitBatch(ctx context.Context, bt *batch, produce [][]*kgo.Record, before, f *flight) error {
	defer bt.b.Discard()
	f.logErr = e.logBatch(ctx, bt, produce, before)
	close(f.logged)
	if f.logErr != nil {
		return f.logErr
	}
	if before != nil {
		if <-before.done; before.err != nil {
			// The changelog now holds this batch's records without the
			// store holding it, as when a commit fails: applied again,
			// the batch writes the same absolute values.
			return errBatchBefore
		}
	}
	sources := changelogSources(produce)
	positions, err := e.advancedPositions(produce, sources, nil, len(produce[1]) > 0)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := e.commitWithPositions(bt.b, positions); err != nil {
		return err
	}
	e.seal(produce, sources, positions, true)
	e.commit.Observe(time.Since(start).Seconds())
	for s, n := range bt.out.applied {
		e.events.WithLabelValues(s, "applied").Add(n)
	}
	for s, n := range bt.out.duplicate {
		e.events.WithLabelValues(s, "duplicate").Add(n)
	}
	for s, n := range bt.out.dead {
		e.events.WithLabelValues(s, "dead_letter").Add(n)
	}
	return nil
}

// logBatch produces a batch's dead letters and re-keyed events, then its
// changelog records in a transaction (writeChangelog), once the batch
// before (nil when none) has written its own.
func (e *Engine) logBatch(ctx context.Context, bt *batch, produce [][]*kgo.Record, before *flight) error {
	if before != nil {
		if <-before.logged; before.logErr != nil {
			return errBatchBefore
		}
	}
	if forward := produce[0]; len(forward) > 0 {
		if err := e.producer.ProduceSync(ctx, forward...).FirstErr(); err != nil {
			return fmt.Errorf("write dead letters and repartitioned events: %w", err)
		}
	}
	if logs := produce[1]; len(logs) > 0 {
		return e.writeChangelog(ctx, logs, bt.consumed)
	}
	return nil
}

// records lists what the batch produces before it commits: its dead
// letters and re-keyed events, then its changelog records, written once
// the first are (a crash in between writes them again; re-keyed copies
// are then dropped by event id). The changelog records are written in one
// transaction, its offsets last: changelogs from before transactions, or
// a backfill's, end each batch with its offsets too (restore.go).
func (bt *batch) records() [][]*kgo.Record {
	var logs []*kgo.Record
	for _, c := range bt.b.Changes() {
		logs = append(logs, changeRecord(c))
	}
	for _, c := range bt.logs {
		logs = append(logs, changeRecord(c))
	}
	for _, c := range bt.offsetChanges() {
		logs = append(logs, changeRecord(c))
	}
	return [][]*kgo.Record{bt.forward, logs}
}

// offsetChanges puts the batch's new offsets into the view changelogs,
// beside the state they produced: each view's own progress, and the job's
// (dead letters, re-keying), which carries no state. A worker that restores
// a partition from a view's changelog resumes where that view's state
// stops; another view's offsets there would make that view skip its own
// restore.
func (bt *batch) offsetChanges() []online.Change {
	var out []online.Change
	for job, parts := range bt.touched {
		shared := []string{job.name}
		for _, cv := range job.reroute {
			shared = append(shared, rerouteKey(cv))
		}
		for i, cv := range job.views {
			for _, name := range append([]string{job.viewKeys[i]}, shared...) {
				for p := range parts {
					if next, ok := bt.progress[name][p]; ok {
						out = append(out, online.OffsetChange(cv.View.Name, name, p, next))
					}
				}
			}
		}
	}
	return out
}

// changeRecord is the changelog record of one change.
func changeRecord(c online.Change) *kgo.Record {
	rec := &kgo.Record{Topic: kafka.ChangelogTopic(c.View), Partition: c.Partition, Key: c.Key, Value: c.Value}
	if c.ExpiresAt != 0 {
		rec.Headers = []kgo.RecordHeader{{Key: kafka.HeaderExpiresAt, Value: []byte(strconv.FormatUint(c.ExpiresAt, 10))}}
	}
	return rec
}

// applyOne takes one record to every part of its job that has not had it
// yet: each view (a view version that is new replays the log: its
// backfill), each re-keyed view, and the job itself (dead letters and
// metrics, once per record).
func (e *Engine) applyOne(bt *batch, job *streamJob, r *kgo.Record, ev *schemas.Event, decodeErr error) error {
	b := bt.b
	due := func(name string) (bool, error) {
		offs, ok := bt.progress[name]
		if !ok {
			base, err := e.committedProgress(name)
			if err != nil {
				return false, err
			}
			offs = maps.Clone(base)
			bt.progress[name] = offs
		}
		if r.Offset < offs[r.Partition] {
			return false, nil
		}
		offs[r.Partition] = r.Offset + 1
		bt.moved[progressAt{name, r.Partition}] = true
		return true, nil
	}
	name := job.stream.Name
	live, err := due(job.name)
	if err != nil {
		return err
	}
	if decodeErr != nil {
		if live {
			bt.forward = append(bt.forward, deadLetter(r, name, decodeErr))
			bt.out.dead[name]++
		}
		// Views still mark the record consumed.
		for _, n := range job.names()[1:] {
			if _, err := due(n); err != nil {
				return err
			}
		}
		return nil
	}
	id, derived := recordID(r, ev)
	arrival, seq := job.position(r)
	applied, dup := false, false
	for i, cv := range job.views {
		vk := job.viewKeys[i]
		ok, err := due(vk)
		if err != nil || !ok {
			if err != nil {
				return err
			}
			continue
		}
		if job.internal && cv.Key(ev) != string(r.Key) {
			// A copy that an earlier version keyed by another entity
			// re-keyed: it sits on its old key's partition. This version
			// takes its own copy, on the partition of the key it applies
			// the event to, so that one partition's records alone change
			// an entity's state (its worker restores it from them).
			continue
		}
		if !derived {
			seen, err := e.seen(b, vk, id)
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
			bt.seen[seenID{vk, id}] = struct{}{}
			bt.logs = append(bt.logs, e.store.SeenChange(cv.View.Name, vk, id, r.Partition))
		}
		applied = true
		key, values, pass := cv.Apply(ev)
		if !pass {
			continue
		}
		we := window.Event{Time: ev.Time, Arrival: arrival, Seq: seq, Values: values}
		if err := e.addEvent(b, cv, key, r.Partition, &we); err != nil {
			return err
		}
	}
	for _, cv := range job.reroute {
		ok, err := due(rerouteKey(cv))
		if err != nil {
			return err
		}
		if ok {
			bt.forward = append(bt.forward, rerouted(r, cv, ev, id, arrival))
		}
	}
	if live && !job.internal {
		switch {
		case dup && !applied:
			bt.out.duplicate[name]++
		default:
			bt.out.applied[name]++
		}
	}
	return nil
}

// seen reports whether an event id was seen under a progress name: by
// the store, this batch included, or by a batch in flight.
func (e *Engine) seen(b *online.Batch, ns, id string) (bool, error) {
	for _, f := range e.flights {
		if _, ok := f.seen[seenID{ns, id}]; ok {
			return true, nil
		}
	}
	return b.Seen(ns, id)
}

// addEvent adds one event to an entity's state. An event older than the
// view's retention at its arrival can no longer change a windowed value at
// any time after that: windowed tiles drop it (and count it), lifetime
// aggregates take it.
func (e *Engine) addEvent(b *online.Batch, cv *featurestore.CompiledView, key string, partition int32, we *window.Event) error {
	late := cv.Layout.Late(we)
	if late {
		e.late.WithLabelValues(cv.View.Name).Inc()
		if cv.Layout.Long < 0 {
			return nil
		}
	}
	st, err := e.cache.get(b, cv, key, partition)
	if err != nil {
		return err
	}
	cv.Layout.Add(st, we, !late)
	// The raw event serves reads at a t inside its tile; it is kept as long
	// as the tiles of windowed grids are. A late one serves lifetime values
	// at a t inside its long-grid tile (reads of windowed values skip it);
	// one older than that keep is in the base, which no read cuts.
	keep := 2 * cv.Retention
	if late && we.Time+keep.Microseconds() <= we.Arrival {
		return nil
	}
	return b.Put(cv.View.Name, cv.View.Version, key, we, keep)
}

// lag sums, over every partition of a topology's topics and every progress
// name of its job, the records between the committed offset and the end of
// the partition.
func lag(ctx context.Context, cl *kgo.Client, topo *topology, names func(*streamJob) []string, committed func(string) (map[int32]int64, error), counts func(topic string, p int32) bool) (int64, error) {
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
				if counts == nil || counts(topic, p) {
					total += max(0, end-offs[p])
				}
			}
		}
	}
	return total, nil
}
