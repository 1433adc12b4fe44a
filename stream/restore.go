package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connectors/kafka"
	"github.com/sluicehq/sluice/featurestore/online"
)

// restore rebuilds, from the views' changelogs, the state of assigned
// partitions that this worker holds no state for (it never consumed them,
// or lost its disk): every entry of the changelog partition is applied,
// the offsets included, so consumption resumes where the last owner
// committed instead of replaying the stream. A changelog without offsets
// for a partition (a view that never ran) leaves it to replay.
func (e *Engine) restore(ctx context.Context, topo *topology, assigned map[string][]int32) error {
	// The batch in flight commits first: a restore writes offsets of its
	// own, and the memory's are read again from the store afterwards.
	if err := e.settle(); err != nil {
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
			offs, err := e.store.Offsets(viewKey(cv))
			if err != nil {
				return err
			}
			var missing []int32
			for _, p := range parts {
				if _, ok := offs[p]; !ok {
					missing = append(missing, p)
				}
			}
			if len(missing) == 0 {
				continue
			}
			n, err := e.restoreView(ctx, kafka.ChangelogTopic(cv.View.Name), missing)
			if err != nil {
				return fmt.Errorf("restore feature view %q from its changelog: %w", cv.View.Name, err)
			}
			if n > 0 {
				restored = true
				e.logger.Info("restored state from changelog", "view", cv.View.Name, "partitions", missing, "entries", n)
				e.restoredEntries.Add(float64(n))
			}
		}
	}
	if restored {
		e.cache.reset()
	}
	return nil
}

// restoreView applies every entry of the changelog partitions that hold
// the given source partitions, up to their current end, and returns how
// many it applied.
func (e *Engine) restoreView(ctx context.Context, topic string, sources []int32) (int, error) {
	ends, err := kafka.EndOffsets(ctx, e.producer, topic)
	if err != nil {
		return 0, err
	}
	n := int32(len(ends[topic]))
	if n == 0 {
		return 0, nil
	}
	want := map[int32]kgo.Offset{}
	left := map[int32]int64{}
	for _, p := range sources {
		cp := p % n
		if end := ends[topic][cp]; end > 0 {
			want[cp] = kgo.NewOffset().AtStart()
			left[cp] = end
		}
	}
	if len(want) == 0 {
		return 0, nil
	}
	cl, err := e.cluster.Client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: want}), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	applied := 0
	// Offsets are applied last, in the final transaction: a crash half-way
	// leaves the partition without offsets, so the next assignment
	// restores it again rather than resuming on half its state.
	offsets := map[string][]byte{}
	b := e.store.NewBatch()
	defer func() { b.Discard() }()
	for len(left) > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return applied, err
		}
		if err := fetches.Err0(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return applied, err
		}
		for _, r := range fetches.Records() {
			end, ok := left[r.Partition]
			if !ok || r.Offset >= end {
				continue
			}
			if r.Offset+1 >= end {
				delete(left, r.Partition)
			}
			exp, expired := changeExpiry(r)
			if expired {
				continue
			}
			if len(r.Key) > 0 && r.Key[0] == 'o' {
				offsets[string(r.Key)] = r.Value
				applied++
				continue
			}
			err := b.Apply(r.Key, r.Value, exp)
			if errors.Is(err, online.ErrBatchFull) {
				if err = b.Commit(); err == nil {
					b = e.store.NewBatch()
					err = b.Apply(r.Key, r.Value, exp)
				}
			}
			if err != nil {
				return applied, err
			}
			applied++
		}
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
	return applied, b.Commit()
}
