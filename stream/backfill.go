package stream

import (
	"context"
	"errors"
	"fmt"
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
// that the rows cover). An offline sink's History is one.
type HistoryFunc func(ctx context.Context, stream string, schema *schemas.Schema, fn func(*offline.Row) error) (map[int32]int64, error)

// backfillBatchRows bounds the rows applied in one backfill transaction.
const backfillBatchRows = 4096

// prepare backfills, from the offline history, every view version of the
// topology that has consumed nothing yet (a new view, or a new version of
// one): it then serves its history without the stream's topic having to
// retain it, and consumption goes on from where the history ends. Views
// keyed by another entity than their stream's replay their repartition
// topic instead.
func (e *Engine) prepare(ctx context.Context, topo *topology) error {
	// Marks follow the topology being consumed from now on, also while no
	// record arrives.
	e.topo = topo
	if e.history == nil {
		return nil
	}
	if err := e.settle(); err != nil {
		return err
	}
	// A backfill commits offsets of its own.
	e.progress = nil
	for _, job := range topo.byTopic {
		if job.internal {
			continue
		}
		for _, cv := range job.views {
			offs, err := e.store.Offsets(viewKey(cv))
			if err != nil {
				return err
			}
			if len(offs) > 0 {
				continue
			}
			if err := e.backfill(ctx, job, cv); err != nil {
				return fmt.Errorf("backfill feature view %q from the offline store: %w", cv.View.Name, err)
			}
		}
	}
	return nil
}

// backfill applies a view's offline history in batches, each committed
// with its changelog. A crash half-way leaves the view without offsets, so
// the next start backfills again; the event ids already applied are then
// skipped.
func (e *Engine) backfill(ctx context.Context, job *streamJob, cv *featurestore.CompiledView) error {
	start := time.Now()
	e.logger.Info("backfilling feature view from the offline store", "view", cv.View.Name, "version", cv.View.Version)
	// Where the changelog starts: a backfill whose entries are the first
	// there holds it from its start.
	topic := kafka.ChangelogTopic(cv.View.Name)
	starts, err := kafka.StartOffsets(ctx, e.producer, topic)
	if err != nil {
		return err
	}
	bf := &backfiller{e: e, cv: cv, vk: viewKey(cv), limit: backfillBatchRows, starts: starts[topic]}
	rows := 0
	offsets, err := e.history(ctx, job.stream.Name, job.stream.Schema, func(row *offline.Row) error {
		rows++
		bf.pending = append(bf.pending, copyRow(row))
		if len(bf.pending) >= bf.limit {
			return bf.flush(ctx, nil)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := bf.flush(ctx, offsets); err != nil {
		return err
	}
	e.backfilled.WithLabelValues(cv.View.Name).Add(float64(bf.taken))
	e.logger.Info("backfilled feature view", "view", cv.View.Name, "version", cv.View.Version,
		"rows", rows, "applied", bf.applied, "seconds", time.Since(start).Seconds())
	return nil
}

// copyRow copies a history row, which the reader reuses.
func copyRow(r *offline.Row) offline.Row {
	c := *r
	c.Values = append([]any(nil), r.Values...)
	return c
}

// backfiller applies history rows to one view version.
type backfiller struct {
	e       *Engine
	cv      *featurestore.CompiledView
	vk      string
	pending []offline.Row // read, not yet committed
	limit   int           // rows per transaction; halves when one does not fit
	applied int           // rows that passed the view's filter
	taken   int           // rows not seen before
	// starts is where the view's changelog partitions started when the
	// backfill began.
	starts map[int32]int64
}

// flush commits the pending rows in as many transactions as they need,
// then, with offsets, records them, which ends the backfill.
func (bf *backfiller) flush(ctx context.Context, offsets map[int32]int64) error {
	rows := bf.pending
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
	bf.pending = bf.pending[:0]
	if offsets != nil {
		return bf.commit(ctx, nil, offsets)
	}
	return nil
}

// commit applies rows and offsets in one transaction with their
// changelog entries.
func (bf *backfiller) commit(ctx context.Context, rows []offline.Row, offsets map[int32]int64) error {
	e := bf.e
	b := e.store.NewBatch()
	defer b.Discard()
	committed := false
	defer func() {
		if !committed {
			e.cache.discard()
		}
	}()
	var logs []online.Change
	var arrival int64
	applied, taken := 0, 0
	for i := range rows {
		row := &rows[i]
		b.SetPartition(row.Partition)
		seen, err := b.Seen(bf.vk, row.EventID)
		if err != nil {
			return err
		}
		if seen {
			continue
		}
		if err := b.MarkSeen(bf.vk, row.EventID); err != nil {
			return err
		}
		logs = append(logs, e.store.SeenChange(bf.cv.View.Name, bf.vk, row.EventID, row.Partition))
		taken++
		ev := schemas.Event{ID: row.EventID, Time: row.EventTime, Values: row.Values}
		if key, values, pass := bf.cv.Apply(&ev); pass {
			we := window.Event{Time: row.EventTime, Arrival: row.Arrival, Seq: window.SeqOf(row.Partition, row.Offset), Values: values}
			if err := e.addEvent(b, bf.cv, key, row.Partition, &we); err != nil {
				return err
			}
			applied++
		}
		arrival = max(arrival, row.Arrival)
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
	recs := make([]*kgo.Record, len(logs))
	for i, c := range logs {
		recs[i] = changeRecord(c)
	}
	var positions []position
	produce := [][]*kgo.Record{recs}
	sources := changelogSources(produce)
	if len(recs) > 0 {
		if err := e.producer.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return fmt.Errorf("write changelogs: %w", err)
		}
		var err error
		if positions, err = e.advancedPositions(produce, sources, bf.starts, false); err != nil {
			return err
		}
	}
	if err := e.commitWithPositions(b, positions); err != nil {
		return err
	}
	e.seal(produce, sources, positions, false)
	committed = true
	e.cache.committed(e.cache.seal())
	bf.applied += applied
	bf.taken += taken
	return nil
}
