package stream

import (
	"context"
	"time"

	"github.com/sluicehq/sluice/connectors/kafka"
	"github.com/sluicehq/sluice/featurestore"
)

// readyEvery is how often the engine looks for view versions that have
// caught up on the partitions it owns.
const readyEvery = time.Second

// markReady marks in the registry each partition the engine owns on which
// a view version has caught up with its job, as committed: the registry
// then knows, whichever node applies a newer version, whether this one is
// complete across the fleet. A failure is logged and tried again later:
// the marks only steer which version an update keeps to serve meanwhile.
func (e *Engine) markReady(ctx context.Context, topo *topology) {
	if topo == nil {
		return
	}
	e.readyAt = time.Now()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	marks, err := e.readyMarks(ctx, topo)
	if err == nil && len(marks) > 0 {
		err = e.job.registry.MarkReady(ctx, marks...)
	}
	if err != nil {
		e.logger.Warn("mark view versions caught up", "err", err)
	}
}

// readyMarks lists the marks the engine's owned partitions call for: a
// partition of a current view version that has no mark yet, on which the
// version's committed offset has reached the job's, or which is empty.
func (e *Engine) readyMarks(ctx context.Context, topo *topology) ([]featurestore.ReadyMark, error) {
	reg := e.job.registry
	repo := reg.Repo()
	var marks []featurestore.ReadyMark
	for topic, job := range topo.byTopic {
		parts := e.owned.owned(topic)
		var jobOffs map[int32]int64
		var ends map[int32]int64
		var total int32
		for i, cv := range job.views {
			v := cv.View
			if cur := repo.Views[v.Name]; cur == nil || cur.Version != v.Version {
				continue // the topology is older than the registry
			}
			var todo []int32
			for _, p := range parts {
				if !reg.Marked(v.Name, v.Version, p) {
					todo = append(todo, p)
				}
			}
			if len(todo) == 0 {
				continue
			}
			if jobOffs == nil {
				var err error
				if jobOffs, err = e.store.Offsets(job.name); err != nil {
					return nil, err
				}
				if total, err = kafka.Partitions(ctx, e.producer, topic); err != nil {
					return nil, err
				}
				all, err := kafka.EndOffsets(ctx, e.producer, topic)
				if err != nil {
					return nil, err
				}
				ends = all[topic]
			}
			viewOffs, err := e.store.Offsets(job.viewKeys[i])
			if err != nil {
				return nil, err
			}
			for _, p := range todo {
				next, consumed := jobOffs[p]
				end, known := ends[p]
				empty := known && end == 0
				if (consumed && viewOffs[p] >= next) || (!consumed && empty) {
					marks = append(marks, featurestore.ReadyMark{View: v.Name, Version: v.Version, Partition: p, Partitions: total})
				}
			}
		}
	}
	return marks, nil
}
