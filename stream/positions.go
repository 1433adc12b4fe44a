package stream

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors/kafka"
	"github.com/sluicehq/sluice/featurestore/online"
)

// A worker's store records, per view and source partition, how far it
// holds the view's changelog (online.Batch.SetChangelogPosition), so that a
// worker getting a partition back reads only what others wrote since
// (restore.go). A batch moves a position over its own entries only.

// changelogSources returns the source partition of each changelog record
// in produce, by group and index, before producing them places them in
// the changelogs' partitions.
func changelogSources(produce [][]*kgo.Record) [][]int32 {
	out := make([][]int32, len(produce))
	for g, recs := range produce {
		out[g] = make([]int32, len(recs))
		for i, r := range recs {
			out[g][i] = r.Partition
		}
	}
	return out
}

// logRun is where a batch's records went in one changelog partition.
type logRun struct {
	first, last int64
	n           int
	sources     map[int32]bool // the source partitions they came from
}

// position is how far the store holds a view's changelog for a source
// partition (online.Batch.SetChangelogPosition).
type position struct {
	view      string
	partition int32
	next      int64
}

// advancedPositions returns the changelog positions that a batch moves:
// those of the source partitions whose records it produced (sources:
// changelogSources), to past the records, when they directly follow the
// store's position and nothing came in between: the store then holds the
// changelog up to the batch's end. Any other writer in between (another
// worker sharing the changelog partition, a member dropped from the group
// writing late) leaves the position where it was, so a catch-up reads
// those entries too. A source partition without a position takes, when
// given, the start of its changelog partition as one. A batch written in a
// transaction (transactional) may also start just past the position when
// the engine's own transaction before set it (Engine.sealed): its commit
// marker lies there, and Kafka writes it before the same producer's next
// transaction's records.
func (e *Engine) advancedPositions(produced [][]*kgo.Record, sources [][]int32, starts map[int32]int64, transactional bool) ([]position, error) {
	runs := map[string]map[int32]*logRun{}
	for g, recs := range produced {
		for i, r := range recs {
			view, ok := kafka.ChangelogView(r.Topic)
			if !ok {
				continue
			}
			if runs[view] == nil {
				runs[view] = map[int32]*logRun{}
			}
			run := runs[view][r.Partition]
			if run == nil {
				run = &logRun{first: r.Offset, last: r.Offset, sources: map[int32]bool{}}
				runs[view][r.Partition] = run
			}
			run.first, run.last, run.n = min(run.first, r.Offset), max(run.last, r.Offset), run.n+1
			run.sources[sources[g][i]] = true
		}
	}
	var out []position
	for view, byPartition := range runs {
		at, err := e.store.ChangelogPositions(view)
		if err != nil {
			return nil, err
		}
		for cp, run := range byPartition {
			if run.last-run.first+1 != int64(run.n) {
				continue
			}
			for p := range run.sources {
				pos, ok := at[p]
				if !ok && starts != nil {
					pos, ok = starts[cp], true
				}
				e.sealedMu.Lock()
				sealed, after := e.sealed[sourceAt{view, p}]
				e.sealedMu.Unlock()
				after = after && transactional && sealed == pos && run.first == pos+1
				if ok && (pos == run.first || after) {
					out = append(out, position{view, p, run.last + 1})
				}
			}
		}
	}
	return out, nil
}

// sourceAt is a view's source partition.
type sourceAt struct {
	view      string
	partition int32
}

// seal notes, once a batch has committed, the positions it set: when its
// changelog records were written in a transaction (marked), a commit marker
// lies at each. The others of the source partitions it wrote are
// forgotten.
func (e *Engine) seal(produced [][]*kgo.Record, sources [][]int32, positions []position, marked bool) {
	e.sealedMu.Lock()
	defer e.sealedMu.Unlock()
	if e.sealed == nil {
		e.sealed = map[sourceAt]int64{}
	}
	for g, recs := range produced {
		for i, r := range recs {
			if view, ok := kafka.ChangelogView(r.Topic); ok {
				delete(e.sealed, sourceAt{view, sources[g][i]})
			}
		}
	}
	if !marked {
		return
	}
	for _, p := range positions {
		e.sealed[sourceAt{p.view, p.partition}] = p.next
	}
}

// commitWithPositions commits b with positions: in it, or, when b has no
// room left, in a transaction of their own right after it. Until then
// they lag, which is safe: the store holds at least what they say.
func (e *Engine) commitWithPositions(b *online.Batch, positions []position) error {
	fitted, err := setPositions(b, positions)
	if err != nil {
		return err
	}
	if err := b.Commit(); err != nil {
		return err
	}
	if fitted {
		return nil
	}
	return e.writePositions(positions)
}

// setPositions records positions in b and reports whether they all fitted.
func setPositions(b *online.Batch, positions []position) (bool, error) {
	for _, p := range positions {
		err := b.SetChangelogPosition(p.view, p.partition, p.next)
		if errors.Is(err, online.ErrBatchFull) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
	return true, nil
}

// writePositions records positions in a transaction of their own.
func (e *Engine) writePositions(positions []position) error {
	b := e.store.NewBatch()
	defer b.Discard()
	if _, err := setPositions(b, positions); err != nil {
		return err
	}
	return b.Commit()
}
