package stream

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors/kafka"
	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/featurestore/offline"
	"github.com/sluicehq/sluice/featurestore/online"
	"github.com/sluicehq/sluice/featurestore/window"
	"github.com/sluicehq/sluice/schemas"
)

// HistoryFunc reads a stream's committed offline history: it calls fn with
// every row below the offsets it returns (the next offset per partition
// that the rows cover). It stops with the error when fn returns one or ctx
// is done: a rebalance waits for it. An offline sink's History is one.
type HistoryFunc func(ctx context.Context, stream string, schema *schemas.Schema, fn func(*offline.Row) error) (map[int32]int64, error)

const (
	// backfillBatchRows bounds the rows applied in one backfill
	// transaction.
	backfillBatchRows = 4096
	// buildBudget bounds the time a backfill holds the consumer between
	// two polls: a rebalance waits for it, and the records of the
	// partitions not being built too.
	buildBudget = 500 * time.Millisecond
	// buildPoll is how long a poll waits for records while a backfill has
	// work to commit.
	buildPoll = 10 * time.Millisecond
)

// prepare readies the engine for a topology before it joins the group:
// marks follow the topology being consumed from now on, also while no
// record arrives.
func (e *Engine) prepare(_ context.Context, topo *topology) error {
	e.topo = topo
	return nil
}

// building is the backfill of a view version, from the offline history, on
// partitions the engine owns: a new view, or a new version of one, that no
// worker has written offsets of to the changelog. The view then serves its
// history without the stream's topic having to retain it, and consumption
// of the partitions goes on from where the history ends. Only the
// partitions' owner builds them, in transactions fenced by its membership
// as its batches are, so a worker dropped from the group cannot write a
// backfill after the partitions' next owner. The history is read on a
// goroutine of its own, and what it read is committed between polls
// (build), so a rebalance waits for a transaction at most; the
// partitions are paused in the consumer meanwhile.
type building struct {
	topic string
	job   *streamJob
	cv    *featurestore.CompiledView
	parts map[int32]bool // owned partitions still to build
	// The reading, from startReading on: chunks carries the rows read and
	// is closed once the history is read, covered and readErr set.
	bf      *backfiller
	chunks  chan []offline.Row
	covered map[int32]int64
	readErr error
	cancel  context.CancelFunc
	start   time.Time
}

// stopReading ends the history's reading; the next build step reads it
// again, and skips the rows committed meanwhile as seen.
func (b *building) stopReading() {
	if b.cancel != nil {
		b.cancel()
		for range b.chunks { // let the reader end
		}
	}
	b.bf, b.chunks, b.cancel = nil, nil, nil
}

// backfillAssigned starts building the view versions that the store holds
// no offsets of on assigned partitions once they are restored, and pauses
// those partitions until they are built.
func (e *Engine) backfillAssigned(topo *topology, assigned map[string][]int32) error {
	if e.history == nil {
		return nil
	}
	for topic, parts := range assigned {
		job := topo.byTopic[topic]
		if job == nil || job.internal {
			continue
		}
		for _, cv := range job.views {
			offs, err := e.store.Offsets(viewKey(cv))
			if err != nil {
				return err
			}
			missing := slices.DeleteFunc(slices.Clone(parts), func(p int32) bool {
				_, ok := offs[p]
				return ok
			})
			if len(missing) > 0 {
				e.addBuild(topic, job, cv, missing)
			}
		}
	}
	return nil
}

// addBuild adds partitions to the building of a view version.
func (e *Engine) addBuild(topic string, job *streamJob, cv *featurestore.CompiledView, parts []int32) {
	if m := e.member.Load(); m != nil && m.consumer != nil {
		m.consumer.PauseFetchPartitions(map[string][]int32{topic: parts})
	}
	i := slices.IndexFunc(e.builds, func(b *building) bool { return b.topic == topic && viewKey(b.cv) == viewKey(cv) })
	if i < 0 {
		e.setBuilds(append(e.builds, &building{topic: topic, job: job, cv: cv, parts: map[int32]bool{}}))
		i = len(e.builds) - 1
	}
	b := e.builds[i]
	b.stopReading() // read again for every partition
	for _, p := range parts {
		b.parts[p] = true
	}
}

// dropBuilds stops building partitions the engine no longer owns (nil: all
// of them) and lets the consumer fetch them again should they come back.
func (e *Engine) dropBuilds(revoked map[string][]int32) {
	if m := e.member.Load(); revoked != nil && m != nil && m.consumer != nil {
		m.consumer.ResumeFetchPartitions(revoked)
	}
	e.setBuilds(slices.DeleteFunc(e.builds, func(b *building) bool {
		if revoked != nil {
			for _, p := range revoked[b.topic] {
				delete(b.parts, p)
			}
		}
		if revoked == nil || len(b.parts) == 0 {
			b.stopReading()
			return true
		}
		return false
	}))
}

// setBuilds replaces the list of backfills in progress.
func (e *Engine) setBuilds(builds []*building) {
	e.builds = builds
	e.nBuilds.Store(int32(len(builds)))
}

// building says whether backfills are in progress (builder). The poll
// loop asks before it polls, while rebalance callbacks may change the
// list.
func (e *Engine) building() bool { return e.nBuilds.Load() > 0 }

// build goes on with the backfills in progress, between two polls: it
// commits what their histories' readers have read, for up to buildBudget,
// and ends each backfill whose history is read whole (builder). When the
// reader has nothing ready it returns after buildPoll, so the records of
// the partitions not being built wait no longer. A failure stops the
// readers; the next step reads again.
func (e *Engine) build(ctx context.Context) error {
	if len(e.builds) == 0 {
		return nil
	}
	if err := e.settle(); err != nil {
		return err
	}
	start := time.Now()
	wait := time.NewTimer(buildPoll)
	defer wait.Stop()
	for len(e.builds) > 0 && time.Since(start) < buildBudget {
		b := e.builds[0]
		if b.chunks == nil {
			if err := e.startReading(ctx, b); err != nil {
				return err
			}
		}
		var err error
		select {
		case rows, ok := <-b.chunks:
			if !ok {
				if err = e.finishBuild(ctx, b); err == nil {
					e.setBuilds(e.builds[1:])
				}
				break
			}
			err = b.bf.commitRows(ctx, slices.DeleteFunc(rows, func(r offline.Row) bool { return !b.parts[r.Partition] }))
		case <-wait.C:
			return nil // the reader has nothing ready
		case <-ctx.Done():
			return ctx.Err()
		}
		wait.Reset(buildPoll)
		if err != nil {
			for _, b := range e.builds {
				b.stopReading()
			}
			return fmt.Errorf("backfill feature view %q from the offline store: %w", b.cv.View.Name, err)
		}
	}
	return nil
}

// startReading starts reading a backfill's history on a goroutine of its
// own, which hands on the rows of the backfill's partitions in chunks.
func (e *Engine) startReading(ctx context.Context, b *building) error {
	parts := slices.Sorted(maps.Keys(b.parts))
	e.logger.Info("backfilling feature view from the offline store", "view", b.cv.View.Name, "version", b.cv.View.Version, "partitions", parts)
	// Where the changelog starts: a backfill whose entries are the first
	// there holds it from its start.
	changelog := kafka.ChangelogTopic(b.cv.View.Name)
	starts, err := kafka.StartOffsets(ctx, e.producer, changelog)
	if err != nil {
		return err
	}
	// The transactions commit, for the partitions, where the job's other
	// parts resume: the view has no offsets there until the last.
	vk := viewKey(b.cv)
	others := slices.DeleteFunc(b.job.names(), func(n string) bool { return n == vk })
	resume, err := resumeFrom(others, e.store.Offsets, parts)
	if err != nil {
		return err
	}
	b.bf = &backfiller{e: e, cv: b.cv, vk: vk, topic: b.topic, resume: resume, parts: b.parts,
		rewritten: map[string]bool{}, limit: backfillBatchRows, starts: starts[changelog]}
	b.chunks, b.start = make(chan []offline.Row, 1), time.Now()
	readCtx, cancel := context.WithCancel(ctx)
	b.cancel = cancel
	go b.read(readCtx, b.chunks, e.history, maps.Clone(b.parts))
	return nil
}

// read reads the history of a backfill's partitions into chunks.
func (b *building) read(ctx context.Context, out chan<- []offline.Row, history HistoryFunc, parts map[int32]bool) {
	defer close(out)
	var chunk []offline.Row
	send := func() error {
		select {
		case out <- chunk:
			chunk = nil
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	covered, err := history(ctx, b.job.stream.Name, b.job.stream.Schema, func(row *offline.Row) error {
		if !parts[row.Partition] {
			return nil
		}
		if chunk = append(chunk, copyRow(row)); len(chunk) >= backfillBatchRows {
			return send()
		}
		return nil
	})
	if err == nil && len(chunk) > 0 {
		err = send()
	}
	b.covered, b.readErr = covered, err
}

// finishBuild ends a backfill whose history is read: it commits the
// history's offsets, or 0 for a partition it holds nothing of, so the
// partitions are not built again, and the consumer resumes them from
// there.
func (e *Engine) finishBuild(ctx context.Context, b *building) error {
	if b.readErr != nil {
		return b.readErr
	}
	offsets := make(map[int32]int64, len(b.parts))
	for p := range b.parts {
		offsets[p] = b.covered[p] // 0 where the history holds nothing
	}
	if err := b.bf.commit(ctx, nil, offsets); err != nil {
		return err
	}
	e.progress = nil // read again: the view's offsets moved
	parts := slices.Sorted(maps.Keys(b.parts))
	if err := e.release(b); err != nil {
		return err
	}
	b.cancel()
	e.logger.Info("backfilled feature view", "view", b.cv.View.Name, "version", b.cv.View.Version, "partitions", parts,
		"applied", b.bf.applied, "seconds", time.Since(b.start).Seconds())
	return nil
}

// release lets the consumer fetch the partitions of a finished backfill
// that no other backfill still builds, from where the job resumes them:
// the history's end, where the job's other parts are not behind it.
func (e *Engine) release(done *building) error {
	var parts []int32
	for p := range done.parts {
		if !slices.ContainsFunc(e.builds, func(b *building) bool { return b != done && b.topic == done.topic && b.parts[p] }) {
			parts = append(parts, p)
		}
	}
	m := e.member.Load()
	if len(parts) == 0 || m == nil || m.consumer == nil {
		return nil
	}
	from, err := resumeFrom(done.job.names(), e.store.Offsets, parts)
	if err != nil {
		return err
	}
	set := map[int32]kgo.EpochOffset{}
	for p, o := range from {
		set[p] = kgo.EpochOffset{Epoch: -1, Offset: o}
	}
	m.consumer.SetOffsets(map[string]map[int32]kgo.EpochOffset{done.topic: set})
	m.consumer.ResumeFetchPartitions(map[string][]int32{done.topic: parts})
	return nil
}

// copyRow copies a history row, which the reader reuses.
func copyRow(r *offline.Row) offline.Row {
	c := *r
	c.Values = append([]any(nil), r.Values...)
	return c
}

// backfiller commits history rows to one view version.
type backfiller struct {
	e      *Engine
	cv     *featurestore.CompiledView
	vk     string
	topic  string          // the stream's topic
	resume map[int32]int64 // partition: where the job's other parts resume
	parts  map[int32]bool  // the partitions being built (building.parts)
	// rewritten holds the entities of rows applied before that this
	// reading has written again.
	rewritten map[string]bool
	limit     int // rows per transaction; halves when one does not fit
	applied   int // rows that passed the view's filter
	taken     int // rows not seen before
	// starts is where the view's changelog partitions started when the
	// backfill began.
	starts map[int32]int64
}

// commitRows commits rows in as many transactions as they need.
func (bf *backfiller) commitRows(ctx context.Context, rows []offline.Row) error {
	for len(rows) > 0 {
		n := min(len(rows), bf.limit)
		err := bf.commit(ctx, rows[:n], nil)
		if errors.Is(err, online.ErrBatchFull) && n > 1 {
			bf.limit = n / 2
			continue
		}
		if err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

// commit applies rows and offsets in one store transaction, its changelog
// entries written before it in a Kafka transaction fenced by the worker's
// membership (writeChangelog).
func (bf *backfiller) commit(ctx context.Context, rows []offline.Row, offsets map[int32]int64) error {
	e := bf.e
	b := e.store.NewBatch()
	defer b.Discard()
	committed := false
	taken, applied := bf.taken, bf.applied
	defer func() {
		if !committed { // counted when applied again
			e.cache.discard()
			bf.taken, bf.applied = taken, applied
		}
	}()
	logs, arrival, err := bf.apply(b, rows)
	if err != nil {
		return err
	}
	if err := e.cache.flush(b, arrival); err != nil {
		return err
	}
	logs = append(b.Changes(), logs...)
	for p, next := range offsets {
		if err := b.SetOffset(bf.vk, p, next); err != nil {
			return err
		}
		logs = append(logs, online.OffsetChange(bf.cv.View.Name, bf.vk, p, next))
	}
	if len(logs) == 0 { // every row was applied before
		committed = true
		return nil
	}
	// The fence commits where the job resumes the partitions being built.
	consumed := make(map[int32]int64, len(bf.parts))
	for p := range bf.parts {
		consumed[p] = bf.resume[p]
		if next, ok := offsets[p]; ok {
			consumed[p] = min(consumed[p], next)
		}
	}
	recs := make([]*kgo.Record, len(logs))
	for i, c := range logs {
		recs[i] = changeRecord(c)
	}
	produce := [][]*kgo.Record{recs}
	sources := changelogSources(produce)
	if err := e.writeChangelog(ctx, recs, map[string]map[int32]int64{bf.topic: consumed}); err != nil {
		return err
	}
	positions, err := e.advancedPositions(produce, sources, bf.starts, true)
	if err != nil {
		return err
	}
	if err := e.commitWithPositions(b, positions); err != nil {
		return err
	}
	e.seal(produce, sources, positions, true)
	committed = true
	e.landed(e.cache.seal())
	e.backfilled.WithLabelValues(bf.cv.View.Name).Add(float64(bf.taken - taken))
	return nil
}

// apply adds rows not seen before to the batch and returns the changelog
// entries of their ids and the latest arrival among them.
func (bf *backfiller) apply(b *online.Batch, rows []offline.Row) ([]online.Change, int64, error) {
	e := bf.e
	var logs []online.Change
	var arrival int64
	for i := range rows {
		row := &rows[i]
		b.SetPartition(row.Partition)
		seen, err := b.Seen(bf.vk, row.EventID)
		if err != nil {
			return nil, 0, err
		}
		ev := schemas.Event{ID: row.EventID, Time: row.EventTime, Values: row.Values}
		if seen {
			// Applied by an unfinished build of the partition before:
			// its entity is written again whole, since another worker's
			// unfinished build may have written older values of it to
			// the changelog since.
			if key, _, pass := bf.cv.Apply(&ev); pass && !bf.rewritten[key] {
				st, err := e.cache.get(b, bf.cv, key, row.Partition)
				if err != nil {
					return nil, 0, err
				}
				rewriteState(st)
				bf.rewritten[key] = true // once per reading of the history
			}
			continue
		}
		if err := b.MarkSeen(bf.vk, row.EventID); err != nil {
			return nil, 0, err
		}
		logs = append(logs, e.store.SeenChange(bf.cv.View.Name, bf.vk, row.EventID, row.Partition))
		bf.taken++
		if key, values, pass := bf.cv.Apply(&ev); pass {
			we := window.Event{Time: row.EventTime, Arrival: row.Arrival, Seq: window.SeqOf(row.Partition, row.Offset), Values: values}
			if err := e.addEvent(b, bf.cv, key, row.Partition, &we); err != nil {
				return nil, 0, err
			}
			bf.applied++
		}
		arrival = max(arrival, row.Arrival)
	}
	return logs, arrival, nil
}

// rewriteState marks every tile and the base of a state changed, so that
// the batch writes them, and their changelog entries, again.
func rewriteState(st *window.State) {
	for _, tiles := range st.Tiles {
		for _, t := range tiles {
			t.Dirty = t.Dirty || !t.Deleted
		}
	}
	st.BaseDirty = true
}
