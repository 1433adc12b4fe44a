package stream

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors/kafka"
	"github.com/sluicehq/sluice/featurestore"
)

// handler is the part of a job that differs between the online engine and
// the offline sink.
type handler interface {
	// offsets returns the next offset to consume per partition under a
	// progress name, as the job's own store committed them.
	offsets(name string) (map[int32]int64, error)
	// names lists the progress names of a topic's job; consumption starts
	// at the lowest of their offsets.
	names(job *streamJob) []string
	// handle processes one poll's records and commits them atomically with
	// their offsets.
	handle(ctx context.Context, topo *topology, records []*kgo.Record) error
	// idle is called when a poll returned nothing for a while, or the job
	// stops (flush buffered work).
	idle(ctx context.Context) error
}

// preparer is a handler with work to do before it consumes a topology.
type preparer interface {
	prepare(ctx context.Context, topo *topology) error
}

// builder is a handler that builds the state of some partitions between
// polls (the stream engine's backfills), while the consumer holds their
// records back.
type builder interface {
	// building says whether there is building to do.
	building() bool
	// build does some of it, briefly: a rebalance waits for it.
	build(ctx context.Context) error
}

// owner is a handler that keeps track of the partitions it owns:
// revoked(nil) says it owns none.
type owner interface {
	assigned(m map[string][]int32)
	revoked(m map[string][]int32)
}

// member is a handler that commits through the group's membership: it is
// told the consumer it works under while one runs, and nil after.
type member interface {
	joined(group string, cl *kgo.Client)
}

// committedReader is a handler that reads topics other jobs write in Kafka
// transactions: it sees committed records only, and the transaction
// markers, which it consumes without applying.
type committedReader interface {
	readsCommitted()
}

// restorer is a handler that can rebuild the state of partitions it is
// assigned before consuming them.
type restorer interface {
	restore(ctx context.Context, topo *topology, assigned map[string][]int32) error
}

// rewinder is a handler that, once handle or idle failed, holds nothing in
// memory beyond what its store committed: its consumer can go back to the
// committed offsets and apply the records again, rather than leave the
// group and join it again, which stops every worker of the group for two
// rebalances.
type rewinder interface {
	// ownedPartitions lists the partitions of a topic the handler owns.
	ownedPartitions(topic string) []int32
	// failedAgain counts one more failure and returns how many there were
	// since the handler last committed or clearFailures was called.
	failedAgain() int
	clearFailures()
	// settle waits for the work in flight; when it failed, the handler
	// forgets what it had not committed and returns the error.
	settle() error
}

// maxRewinds bounds the failures in a row that the consumer rewinds for;
// past it, it starts again (a worker that fails for good gives its
// partitions to the others meanwhile).
const maxRewinds = 3

// groupJob consumes the registry's stream topics as a consumer group,
// restarting when the definitions change.
type groupJob struct {
	name     string
	cluster  kafka.Cluster
	registry *featurestore.Registry
	h        handler
	logger   *slog.Logger
	maxPoll  int
	idleTick time.Duration
	// layout says which topics the job reads for a registry version.
	layout func(*featurestore.Repo) (*topology, error)

	mu         sync.Mutex
	laidOut    *featurestore.Repo // the registry version topo was built for
	laidOutTop *topology
}

// topologyFor returns the layout of a registry version, built once per
// version: consuming and measuring lag share it, so frequent lag checks
// compile nothing.
func (g *groupJob) topologyFor(repo *featurestore.Repo) (*topology, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.laidOut == repo {
		return g.laidOutTop, nil
	}
	t, err := g.layout(repo)
	if err != nil {
		return nil, err
	}
	g.laidOut, g.laidOutTop = repo, t
	return t, nil
}

// run returns when ctx is done.
func (g *groupJob) run(ctx context.Context) error {
	for {
		changed := g.registry.Changed()
		topo, err := g.topologyFor(g.registry.Repo())
		if p, ok := g.h.(preparer); ok && err == nil {
			err = p.prepare(ctx, topo)
		}
		if err == nil && len(topo.topics) > 0 {
			err = g.consume(ctx, topo, changed)
		} else if err == nil {
			select {
			case <-ctx.Done():
			case <-changed:
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			g.logger.Error("stream job failed; retrying", "job", g.name, "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(retryDelay):
			}
		}
	}
}

// consume runs one consumer until ctx is done, the definitions change, or
// an error.
func (g *groupJob) consume(ctx context.Context, topo *topology, changed <-chan struct{}) error {
	pollCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-changed:
			cancel()
		case <-pollCtx.Done():
		}
	}()
	// failed restarts the consumer; rewound, set when work in flight
	// failed while partitions moved, moves it back to the committed
	// offsets (rewinder).
	var failed, rewound atomic.Pointer[error]
	if r, ok := g.h.(rewinder); ok {
		r.clearFailures() // a new consumer rewinds afresh
	}
	cl, err := g.client(topo, &failed, &rewound)
	if err != nil {
		return err
	}
	if m, ok := g.h.(member); ok {
		m.joined(g.group(), cl)
	}
	defer g.leave(ctx, cl)
	for {
		wait := g.idleTick
		if b, ok := g.h.(builder); ok && b.building() {
			wait = buildPoll
		}
		tick, stop := context.WithTimeout(pollCtx, wait)
		fetches := cl.PollRecords(tick, g.maxPoll)
		stop()
		if pollCtx.Err() != nil || fetches.IsClientClosed() {
			return nil
		}
		if len(fetches) == 0 {
			// Woken by a rebalance that left nothing to return (a poll
			// that times out returns its error): the rebalance may still
			// be running its callbacks, which use the handler too.
			continue
		}
		if err := failed.Swap(nil); err != nil {
			return *err
		}
		if cause := rewound.Swap(nil); cause != nil {
			// Work given up in a rebalance failed: this poll's records may
			// follow it, so they are dropped.
			if !g.rewind(cl, topo, *cause) {
				return *cause
			}
			g.pause(pollCtx, cl)
			continue
		}
		var ferr error
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				g.logger.Warn("fetch error", "job", g.name, "topic", topic, "partition", p, "err", err)
				ferr = err
			}
		})
		recs := fetches.Records()
		var err error
		if len(recs) == 0 {
			err = g.h.idle(ctx)
		} else {
			err = g.h.handle(ctx, topo, recs)
		}
		if b, ok := g.h.(builder); ok && err == nil {
			err = b.build(ctx)
		}
		if err != nil {
			if ctx.Err() != nil || !g.rewind(cl, topo, err) {
				return err
			}
			g.pause(pollCtx, cl)
			continue
		}
		cl.AllowRebalance()
		if ferr != nil && len(recs) == 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// leave stops a consumer: the handler's work in flight commits (or fails)
// under the membership it was done in, then the consumer leaves the group.
func (g *groupJob) leave(ctx context.Context, cl *kgo.Client) {
	if err := g.h.idle(context.WithoutCancel(ctx)); err != nil {
		g.logger.Error("flush on stop", "job", g.name, "err", err)
	}
	if m, ok := g.h.(member); ok {
		m.joined("", nil)
	}
	// Leaving the group waits for a rebalance that polling blocks.
	cl.AllowRebalance()
	cl.Close()
	if o, ok := g.h.(owner); ok {
		o.revoked(nil)
	}
}

// client makes the job's group consumer. failed carries an error of a
// rebalance callback to the poll loop: the consumer's positions may be past
// work that did not commit, so it must start again from the committed
// offsets.
func (g *groupJob) client(topo *topology, failed, rewound *atomic.Pointer[error]) (*kgo.Client, error) {
	var restoreErr atomic.Pointer[error]
	var committed []kgo.Opt
	if _, ok := g.h.(committedReader); ok {
		committed = []kgo.Opt{kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords()}
	}
	return g.cluster.Client(append(committed,
		kgo.ConsumerGroup(g.group()),
		kgo.ConsumeTopics(topo.topics...),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchMaxWait(100*time.Millisecond),
		// A member that died is noticed within seconds, not the default 45.
		kgo.SessionTimeout(10*time.Second),
		kgo.HeartbeatInterval(time.Second),
		kgo.RebalanceTimeout(10*time.Second),
		// Restores run when partitions are assigned: franz-go runs that
		// callback, like the revoke one, only between a poll's handling
		// and the next poll, so it never races the handler. Offsets are
		// fetched after it; a failed restore fails that step, and the
		// group tries the assignment again.
		kgo.OnPartitionsAssigned(func(ctx context.Context, _ *kgo.Client, assigned map[string][]int32) {
			if o, ok := g.h.(owner); ok {
				o.assigned(assigned)
			}
			if r, ok := g.h.(rewinder); ok {
				// Work in flight commits first; a failure of it is
				// rewound for, not restored over.
				g.flushed(r.settle(), failed, rewound)
			}
			if r, ok := g.h.(restorer); ok {
				err := r.restore(ctx, topo, assigned)
				restoreErr.Store(&err)
				if err != nil {
					failed.Store(&err)
				}
			}
		}),
		kgo.AdjustFetchOffsetsFn(func(ctx context.Context, m map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
			if err := restoreErr.Swap(nil); err != nil && *err != nil {
				return nil, *err
			}
			return g.adjust(topo, m)
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
			g.giveUp(ctx, revoked, failed, rewound)
		}),
		// Lost too: the batches in flight must be refused before the
		// consumer rejoins, since their commits are fenced by the
		// membership it holds when they commit.
		kgo.OnPartitionsLost(func(ctx context.Context, _ *kgo.Client, lost map[string][]int32) {
			g.giveUp(ctx, lost, failed, rewound)
		}),
	)...)
}

// giveUp hands partitions back: the handler stops owning them, and flushes
// its work (the stream engine waits for its batches in flight) before the
// group moves on.
func (g *groupJob) giveUp(ctx context.Context, parts map[string][]int32, failed, rewound *atomic.Pointer[error]) {
	if o, ok := g.h.(owner); ok {
		o.revoked(parts)
	}
	g.flushed(g.h.idle(ctx), failed, rewound)
}

// flushed hands on err, the outcome of waiting for the handler's work in
// flight in a rebalance callback: a failure goes to rewound when the
// handler is a rewinder, else to failed; the next poll then rewinds or
// restarts.
func (g *groupJob) flushed(err error, failed, rewound *atomic.Pointer[error]) {
	if err == nil {
		return
	}
	g.logger.Error("flush in a rebalance", "job", g.name, "err", err)
	if _, ok := g.h.(rewinder); ok {
		rewound.Store(&err)
		return
	}
	failed.Store(&err)
}

// rewind moves the consumer back to the offsets the job committed, after
// its handler failed (cause) and forgot what it had not committed, and
// reports whether it did: the handler must be a rewinder that has not
// failed more than maxRewinds times since it last committed. It runs
// between a poll and AllowRebalance, as SetOffsets requires; the group's
// rebalance callbacks run after it, so a batch refused because the worker
// lost its partitions hands them over as usual.
func (g *groupJob) rewind(cl *kgo.Client, topo *topology, cause error) bool {
	r, ok := g.h.(rewinder)
	if !ok || r.failedAgain() > maxRewinds {
		return false
	}
	g.logger.Warn("batch failed; applying it again from the committed offsets", "job", g.name, "err", cause)
	set := map[string]map[int32]kgo.EpochOffset{}
	for topic, job := range topo.byTopic {
		owned := r.ownedPartitions(topic)
		if len(owned) == 0 {
			continue
		}
		from, err := g.from(job, owned)
		if err != nil {
			g.logger.Error("read the committed offsets", "job", g.name, "err", err)
			return false
		}
		set[topic] = map[int32]kgo.EpochOffset{}
		for p, o := range from {
			set[topic][p] = kgo.EpochOffset{Epoch: -1, Offset: o}
		}
	}
	// Buffered records are dropped, and every owned partition is moved to
	// the committed offsets (a paused one stays paused). Partitions the
	// worker lost start at the committed offsets when they are assigned
	// again (adjust).
	cl.SetOffsets(set)
	return true
}

// pause lets the group rebalance, then waits retryDelay before the next
// poll after a rewind, so that a failing broker or store is not hammered.
func (g *groupJob) pause(ctx context.Context, cl *kgo.Client) {
	cl.AllowRebalance()
	select {
	case <-ctx.Done():
	case <-time.After(retryDelay):
	}
}

// group names the job's consumer group.
func (g *groupJob) group() string { return "sluice-" + g.name }

// adjust replaces the group's offsets with those the job committed.
func (g *groupJob) adjust(topo *topology, m map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	for topic, parts := range m {
		job := topo.byTopic[topic]
		if job == nil {
			continue
		}
		from, err := g.from(job, slices.Collect(maps.Keys(parts)))
		if err != nil {
			return nil, err
		}
		// Exact, 0 included (an offset below the log's start resumes at
		// the start): the consumer ignores SetOffsets for a partition it
		// started at a relative offset and consumed nothing of, as a
		// partition paused for a backfill.
		for p, o := range from {
			parts[p] = kgo.NewOffset().At(o).WithEpoch(-1)
		}
	}
	return m, nil
}

// from returns where a job consumes each of partitions: where the job or
// any of its views is furthest behind, 0 where one holds no offset.
func (g *groupJob) from(job *streamJob, partitions []int32) (map[int32]int64, error) {
	return resumeFrom(g.h.names(job), g.h.offsets, partitions)
}

// resumeFrom returns where each of partitions is consumed from by the
// progress names: the lowest offset any of them holds of it, 0 where one
// holds none.
func resumeFrom(names []string, offsets func(name string) (map[int32]int64, error), partitions []int32) (map[int32]int64, error) {
	var stored []map[int32]int64
	for _, name := range names {
		offs, err := offsets(name)
		if err != nil {
			return nil, err
		}
		stored = append(stored, offs)
	}
	out := make(map[int32]int64, len(partitions))
	for _, p := range partitions {
		var from int64 = -1
		for _, offs := range stored {
			if o := offs[p]; from < 0 || o < from {
				from = o
			}
		}
		out[p] = max(from, 0)
	}
	return out, nil
}
