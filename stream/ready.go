package stream

import (
	"context"
	"fmt"
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
// the marks only steer which version is served meanwhile.
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

// readyMarks lists the marks the engine's owned partitions call for, on
// each topic: for a current view version, a partition on which its
// committed offset has reached the job's and the end the partition had
// when the engine took it, or which holds no record; for a view keyed by
// another entity, the same of its re-keying on the stream's partitions
// (rerouted marks), and on its repartition topic's partitions only once
// the stream is re-keyed on every partition and the view has applied what
// the topic then held.
func (e *Engine) readyMarks(ctx context.Context, topo *topology) ([]featurestore.ReadyMark, error) {
	reg := e.job.registry
	repo := reg.Repo()
	for k := range e.rerouted {
		if v := repo.Views[k.view]; v == nil || v.Version != k.version {
			delete(e.rerouted, k) // a view deleted and created again starts over at version 1
		}
	}
	var marks []featurestore.ReadyMark
	for topic, job := range topo.byTopic {
		on := &topicMarks{e: e, topic: topic, job: job, parts: e.owned.owned(topic)}
		for i, cv := range job.views {
			var since map[int32]int64
			if job.internal {
				if !current(repo, cv) || !reg.Rerouted(cv.View.Name, cv.View.Version) {
					continue
				}
				var err error
				if since, err = e.reroutedEnds(ctx, cv, on); err != nil {
					return nil, err
				}
			}
			ms, err := on.marks(ctx, repo, cv, job.viewKeys[i], since, false)
			if err != nil {
				return nil, err
			}
			marks = append(marks, ms...)
		}
		for _, cv := range job.reroute {
			ms, err := on.marks(ctx, repo, cv, rerouteKey(cv), nil, true)
			if err != nil {
				return nil, err
			}
			marks = append(marks, ms...)
		}
	}
	return marks, nil
}

// current reports whether cv is the registry's version of its view (the
// topology may be older).
func current(repo *featurestore.Repo, cv *featurestore.CompiledView) bool {
	v := repo.Views[cv.View.Name]
	return v != nil && v.Version == cv.View.Version
}

// reroutedEnds returns the end offsets of a view's repartition topic (on,
// which judges that topic) as they were when the engine first saw the
// stream re-keyed on every partition: every re-keyed event is below them,
// since a partition is marked re-keyed after its events were written. A
// listing that lacks a partition is not kept: it is tried again at the
// next look.
func (e *Engine) reroutedEnds(ctx context.Context, cv *featurestore.CompiledView, on *topicMarks) (map[int32]int64, error) {
	k := versionKey{cv.View.Name, cv.View.Version}
	if ends, ok := e.rerouted[k]; ok {
		return ends, nil
	}
	if err := on.load(ctx); err != nil {
		return nil, err
	}
	if int32(len(on.ends)) < on.total {
		return nil, fmt.Errorf("end offsets of %s: %d of %d partitions listed", on.topic, len(on.ends), on.total)
	}
	if e.rerouted == nil {
		e.rerouted = map[versionKey]map[int32]int64{}
	}
	e.rerouted[k] = on.ends
	return on.ends, nil
}

// versionKey names a view version.
type versionKey struct {
	view    string
	version int
}

// topicMarks judges the owned partitions of one topic, reading the job's
// offsets, the partition count and the start and end offsets once.
type topicMarks struct {
	e      *Engine
	topic  string
	job    *streamJob
	parts  []int32
	loaded bool
	jobs   map[int32]int64
	starts map[int32]int64
	ends   map[int32]int64
	total  int32
}

func (t *topicMarks) load(ctx context.Context) error {
	if t.loaded {
		return nil
	}
	var err error
	if t.jobs, err = t.e.store.Offsets(t.job.name); err != nil {
		return err
	}
	if t.total, err = kafka.Partitions(ctx, t.e.producer, t.topic); err != nil {
		return err
	}
	starts, err := kafka.StartOffsets(ctx, t.e.producer, t.topic)
	if err != nil {
		return err
	}
	ends, err := kafka.EndOffsets(ctx, t.e.producer, t.topic)
	if err != nil {
		return err
	}
	t.starts, t.ends, t.loaded = starts[t.topic], ends[t.topic], true
	return nil
}

// marks lists the partitions to mark for a current view version whose
// progress is committed under name: those not marked yet whose progress
// has reached the job's and the end the partition had when the engine
// first judged it (ownership.endSince), or that hold no record, and that
// have reached since, when set.
func (t *topicMarks) marks(ctx context.Context, repo *featurestore.Repo, cv *featurestore.CompiledView, name string, since map[int32]int64, rerouted bool) ([]featurestore.ReadyMark, error) {
	if !current(repo, cv) {
		return nil, nil
	}
	reg := t.e.job.registry
	var todo []featurestore.ReadyMark
	for _, p := range t.parts {
		m := featurestore.ReadyMark{View: cv.View.Name, Version: cv.View.Version, Partition: p, Rerouted: rerouted}
		if !reg.Marked(m) {
			todo = append(todo, m)
		}
	}
	if len(todo) == 0 {
		return nil, nil
	}
	if err := t.load(ctx); err != nil {
		return nil, err
	}
	offs, err := t.e.store.Offsets(name)
	if err != nil {
		return nil, err
	}
	var out []featurestore.ReadyMark
	for _, m := range todo {
		p := m.Partition
		end, known := t.ends[p]
		start, listed := t.starts[p]
		if !known || !listed {
			continue
		}
		next, consumed := t.jobs[p]
		caught := consumed && offs[p] >= next && offs[p] >= t.e.owned.endSince(t.topic, p, end)
		if !caught && start < end || offs[p] < since[p] {
			continue
		}
		m.Partitions = t.total
		out = append(out, m)
	}
	return out, nil
}
