package stream

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors/kafka"
	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/featurestore/online"
)

// restore brings the state of assigned partitions up to date from the
// views' changelogs before they are consumed. A partition this worker
// holds no state for (it never consumed it, or lost its disk) is rebuilt:
// the entries of its changelog partition up to the last offsets are
// applied, the offsets included, so consumption resumes where the last
// owner committed instead of replaying the stream. A partition it held
// catches up: the entries written after the store's position in the
// changelog (Batch.SetChangelogPosition), which another owner wrote
// meanwhile, are applied the same way; one it holds without a position
// resumes from its own offsets. A partition whose changelog holds no
// offsets (a view that never ran) is then backfilled from the offline
// history (backfillAssigned), or left to replay where there is none.
func (e *Engine) restore(ctx context.Context, topo *topology, assigned map[string][]int32) error {
	// The batches in flight commit first: a restore writes offsets of its
	// own, and the memory's are read again from the store afterwards.
	if err := e.settle(); err != nil {
		return err
	}
	// Starting the transactions aborts any that an earlier run of this
	// worker left open, which the reads below would otherwise wait for.
	if _, err := e.openTxn(ctx); err != nil {
		return err
	}
	e.progress = nil
	restored := false
	for topic, parts := range assigned {
		job := topo.byTopic[topic]
		if job == nil {
			continue
		}
		for _, cv := range job.views {
			n, err := e.restoreView(ctx, cv, parts)
			if err != nil {
				return fmt.Errorf("restore feature view %q from its changelog: %w", cv.View.Name, err)
			}
			if n > 0 {
				restored = true
				e.restoredEntries.Add(float64(n))
			}
		}
	}
	if restored {
		e.cache.reset()
	}
	return e.backfillAssigned(topo, assigned)
}

// restoreView applies the entries of a view's changelog partitions that
// hold the given source partitions, up to the last offsets in each, and
// returns how many it applied: from the start for partitions the store
// holds nothing of, from the lowest position the store holds of those
// source partitions (Batch.SetChangelogPosition) for the others
// (restoreFrom). A position means the store holds every entry before it,
// of every version of the view. Each batch's entries end with its offsets (batch.records),
// so entries after the last offsets belong to a batch whose offsets were
// never written: its worker died between the two, and never committed it.
// Left out, the batch is replayed from the stream on top of the state
// before it; applied, it would be counted twice.
func (e *Engine) restoreView(ctx context.Context, cv *featurestore.CompiledView, parts []int32) (int, error) {
	view := cv.View.Name
	topic := kafka.ChangelogTopic(view)
	listed, err := kafka.EndOffsets(ctx, e.producer, topic)
	if err != nil || len(listed[topic]) == 0 { // no changelog yet
		return 0, err
	}
	ends := listed[topic]
	n, err := kafka.Partitions(ctx, e.producer, topic)
	if err != nil {
		return 0, err
	}
	plan, err := e.restoreFrom(cv, parts, n, ends)
	if err != nil {
		return 0, err
	}
	start, end, err := e.changelogSpan(ctx, topic, n, plan.full, ends)
	if err != nil {
		return 0, err
	}
	for cp, pos := range plan.since {
		if _, taken := start[cp]; !taken && pos < ends[cp] {
			start[cp], end[cp] = pos, ends[cp]
		}
	}
	upTo, err := e.lastOffsets(ctx, topic, start, end)
	if err != nil {
		return 0, err
	}
	skip, err := e.superseded(ctx, topic, plan, n, start, upTo)
	if err != nil {
		return 0, err
	}
	positions := restoredPositions(plan.read, n, ends, start, upTo)
	for _, p := range plan.read {
		if pos, ok := skip[p%n]; ok {
			positions[p] = pos
		}
	}
	for cp := range skip {
		delete(upTo, cp)
	}
	applied, err := e.applyChangelog(ctx, view, topic, start, upTo, positions)
	if applied > 0 {
		e.logger.Info("restored state from changelog", "view", view, "changelog_partitions", slices.Sorted(maps.Keys(upTo)), "entries", applied)
	}
	return applied, err
}

// restorePlan is how a restore reads a view's changelog partitions.
type restorePlan struct {
	full  []int32         // source partitions the store holds nothing of: read from the start
	since map[int32]int64 // changelog partition: the lowest position to catch up from
	read  []int32         // the source partitions read, full or since
	own   map[int32]int64 // source partitions read since a position: the store's own next offset, where it has one
}

// restoreFrom plans a restore of the source partitions of a view: those
// the store holds nothing of are restored in full; those it holds a
// position of (Batch.SetChangelogPosition) catch up from it, each
// changelog partition from the lowest of them. A partition the store holds
// offsets but no position of (a store of an older build, a backfill
// behind other writers) resumes from its own offsets, as do those whose
// position lies past the changelog's end (the topic was made again):
// restored over what the store holds, its state would take the last
// offsets in the changelog, which may be older than entries before them.
func (e *Engine) restoreFrom(cv *featurestore.CompiledView, parts []int32, n int32, ends map[int32]int64) (*restorePlan, error) {
	offs, err := e.store.Offsets(viewKey(cv))
	if err != nil {
		return nil, err
	}
	at, err := e.store.ChangelogPositions(cv.View.Name)
	if err != nil {
		return nil, err
	}
	plan := &restorePlan{since: map[int32]int64{}, own: map[int32]int64{}}
	for _, p := range parts {
		cp := p % n
		pos, known := at[p]
		next, held := offs[p]
		switch {
		case known && pos <= ends[cp]:
			if low, seen := plan.since[cp]; !seen || pos < low {
				plan.since[cp] = pos
			}
			if held {
				plan.own[p] = next
			}
		case held:
			continue
		default:
			plan.full = append(plan.full, p)
		}
		plan.read = append(plan.read, p)
	}
	return plan, nil
}

// superseded returns the changelog partitions, read since a position, whose
// entries up to upTo the store has no use for: every source partition
// they hold is one the store has offsets of, and no offsets there, of any
// progress name, go past the store's own. Their writers got no further
// than this worker; they are a backfill of another worker behind this
// one's entries, or a dropped member's late batch, and applied they would
// take the state back.
func (e *Engine) superseded(ctx context.Context, topic string, plan *restorePlan, n int32, start, upTo map[int32]int64) (map[int32]int64, error) {
	candidate := map[int32]bool{}
	for cp := range plan.since {
		if _, ok := upTo[cp]; ok {
			candidate[cp] = true
		}
	}
	for _, p := range plan.read {
		if _, held := plan.own[p]; !held {
			delete(candidate, p%n)
		}
	}
	from, to := map[int32]int64{}, map[int32]int64{}
	for cp := range candidate {
		from[cp], to[cp] = start[cp], upTo[cp]
	}
	own := map[string]map[int32]int64{} // by progress name, read when first needed
	err := e.readChangelog(ctx, topic, from, to, func(r *kgo.Record) error {
		name, p, ok := online.OffsetOf(r.Key)
		if !ok || len(r.Value) != 8 {
			return nil
		}
		if own[name] == nil {
			offs, err := e.store.Offsets(name)
			if err != nil {
				return err
			}
			own[name] = offs
		}
		if next, held := own[name][p]; !held || int64(binary.BigEndian.Uint64(r.Value)) > next {
			delete(candidate, r.Partition)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	for cp := range candidate {
		out[cp] = upTo[cp]
	}
	return out, nil
}

// restoredPositions is how far the store holds each source partition's
// changelog partition once a restore read it from start and applied it up
// to upTo: to upTo where it found offsets; where it read none, only to
// where it began (what follows may be a batch still being written); to the
// end where there was nothing to read.
func restoredPositions(parts []int32, n int32, ends, start, upTo map[int32]int64) map[int32]int64 {
	out := map[int32]int64{}
	for _, p := range parts {
		cp := p % n
		if pos, ok := upTo[cp]; ok {
			out[p] = pos
		} else if pos, ok := start[cp]; ok {
			out[p] = pos
		} else {
			out[p] = ends[cp]
		}
	}
	return out
}

// applyChangelog applies the entries of a view's changelog partitions
// from start up to upTo, the offsets last, and records the positions
// (source partition: changelog offset) with them. It returns how many
// entries it applied.
func (e *Engine) applyChangelog(ctx context.Context, view, topic string, start, upTo, positions map[int32]int64) (int, error) {
	applied := 0
	// Offsets are applied last, in the final transaction: a crash half-way
	// leaves the partition without offsets, so the next assignment
	// restores it again rather than resuming on half its state.
	offsets := map[string][]byte{}
	b := e.store.NewBatch()
	defer func() { b.Discard() }()
	err := e.readChangelog(ctx, topic, start, upTo, func(r *kgo.Record) error {
		exp, expired := changeExpiry(r)
		if expired {
			return nil
		}
		applied++
		if isOffsets(r) {
			offsets[string(r.Key)] = r.Value
			return nil
		}
		err := b.Apply(r.Key, r.Value, exp)
		if errors.Is(err, online.ErrBatchFull) {
			if err = b.Commit(); err == nil {
				b = e.store.NewBatch()
				err = b.Apply(r.Key, r.Value, exp)
			}
		}
		return err
	})
	if err != nil {
		return applied, err
	}
	if err := b.Commit(); err != nil {
		return applied, err
	}
	b = e.store.NewBatch()
	for k, v := range offsets {
		if err := b.Apply([]byte(k), v, 0); err != nil {
			return applied, err
		}
	}
	for p, next := range positions {
		if err := b.SetChangelogPosition(view, p, next); err != nil {
			return applied, err
		}
	}
	return applied, b.Commit()
}

// changelogSpan returns where the changelog partitions that hold the given
// source partitions start and end, leaving out empty ones.
func (e *Engine) changelogSpan(ctx context.Context, topic string, n int32, sources []int32, ends map[int32]int64) (start, end map[int32]int64, err error) {
	start, end = map[int32]int64{}, map[int32]int64{}
	if len(sources) == 0 {
		return start, end, nil
	}
	starts, err := kafka.StartOffsets(ctx, e.producer, topic)
	if err != nil {
		return nil, nil, err
	}
	for _, p := range sources {
		cp := p % n
		from, to := starts[topic][cp], ends[cp]
		if to > from {
			start[cp], end[cp] = from, to
		}
	}
	return start, end, nil
}

func isOffsets(r *kgo.Record) bool { return len(r.Key) > 0 && r.Key[0] == 'o' }

// tailWindow is how many entries from a changelog partition's end
// lastOffsets reads first; it reads four times as many each time it finds
// no offsets there.
const tailWindow = 4096

// lastOffsets returns, per changelog partition of end, the position just
// after its last offsets entry and the transaction markers right behind
// it, reading back from the end; a partition without any is left out,
// unless it holds nothing but markers from its start.
func (e *Engine) lastOffsets(ctx context.Context, topic string, start, end map[int32]int64) (map[int32]int64, error) {
	out := map[int32]int64{}
	left := maps.Clone(end)
	from := map[int32]int64{}
	// markers: every record read since the last offsets entry, or since
	// the start, is a transaction marker.
	markers := map[int32]bool{}
	for window := int64(tailWindow); len(left) > 0; window *= 4 {
		for p, o := range left {
			from[p] = max(start[p], o-window)
			markers[p] = from[p] <= start[p]
		}
		err := kafka.ReadCommitted(ctx, e.producer, topic, from, left, func(r *kgo.Record) error {
			switch {
			case isOffsets(r):
				out[r.Partition], markers[r.Partition] = r.Offset+1, true
			case r.Attrs.IsControl():
				if markers[r.Partition] {
					out[r.Partition] = r.Offset + 1
				}
			default:
				markers[r.Partition] = false
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		for p := range left {
			if _, ok := out[p]; ok || from[p] <= start[p] {
				delete(left, p)
			}
		}
	}
	return out, nil
}

// readChangelog calls fn with the entries of each changelog partition in
// to, from from[p] up to to[p], in order, as committed: entries of aborted
// transactions are left out, and those of open ones waited for.
func (e *Engine) readChangelog(ctx context.Context, topic string, from, to map[int32]int64, fn func(*kgo.Record) error) error {
	return kafka.ReadCommitted(ctx, e.producer, topic, from, to, func(r *kgo.Record) error {
		if r.Attrs.IsControl() {
			return nil
		}
		return fn(r)
	})
}
