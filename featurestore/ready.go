package featurestore

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// KindReady is the registry record kind that marks a view version caught
// up on one partition of the topic it consumes: the stream worker owning
// the partition has applied, for that version, every record that its job
// had consumed. Workers each mark their own partitions, so a version is
// caught up across the fleet once every partition is marked. Like
// datasets, marks share the registry's log but are not part of a Repo.
const KindReady = "view_ready"

// KindRerouted is the registry record kind that marks, for a view keyed by
// another entity than its stream's, one partition of the stream as
// re-keyed: the worker owning it has written to the view's repartition
// topic every event its job had consumed. A worker marks a partition of
// the repartition topic ready only once the stream is re-keyed on every
// partition, and after applying what the repartition topic then held.
const KindRerouted = "view_rerouted"

// ReadyMark is one partition's mark. Its record's key names the view,
// version and partition; its value holds the partition count.
type ReadyMark struct {
	View      string
	Version   int
	Partition int32
	// Partitions is how many partitions the marked topic has.
	Partitions int32
	// Rerouted makes it a KindRerouted mark of the stream's partition.
	Rerouted bool
}

// readyValue is the value of a mark's record.
type readyValue struct {
	Partitions int32 `json:"partitions"`
}

// readyKey names a view version's marks of one kind.
type readyKey struct {
	view     string
	version  int
	rerouted bool
}

// readyParts is what the marks of a view version say.
type readyParts struct {
	partitions int32
	marked     map[int32]bool
}

func (m ReadyMark) kind() string {
	if m.Rerouted {
		return KindRerouted
	}
	return KindReady
}

func (m ReadyMark) recordKey() string {
	return RecordKey(m.kind(), m.View+"/"+strconv.Itoa(m.Version)+"/"+strconv.Itoa(int(m.Partition)))
}

func (m ReadyMark) key() readyKey { return readyKey{m.View, m.Version, m.Rerouted} }

// splitReady moves ready and rerouted marks out of recs into the
// registry's table (a nil value removes one), returning the other records.
func (r *Registry) splitReady(recs []Record) []Record {
	r.readyMu.Lock()
	defer r.readyMu.Unlock()
	out := recs[:0:0]
	for _, rec := range recs {
		name, ready := strings.CutPrefix(rec.Key, KindReady+"/")
		rerouted := false
		if !ready {
			name, rerouted = strings.CutPrefix(rec.Key, KindRerouted+"/")
		}
		if !ready && !rerouted {
			out = append(out, rec)
			continue
		}
		m, ok := parseReadyName(name)
		if !ok {
			continue // not a mark this build can read
		}
		m.Rerouted = rerouted
		k := m.key()
		p := r.ready[k]
		if len(rec.Value) == 0 {
			if p != nil {
				delete(p.marked, m.Partition)
				if len(p.marked) == 0 {
					delete(r.ready, k)
				}
			}
			continue
		}
		var v readyValue
		if json.Unmarshal(rec.Value, &v) != nil {
			continue
		}
		if p == nil {
			p = &readyParts{marked: map[int32]bool{}}
			r.ready[k] = p
		}
		// A topic's partitions only grow: a mark that counted fewer is
		// older.
		p.partitions = max(p.partitions, v.Partitions)
		p.marked[m.Partition] = true
	}
	return out
}

// parseReadyName reads the view, version and partition of a mark's key.
func parseReadyName(name string) (ReadyMark, bool) {
	view, rest, ok1 := strings.Cut(name, "/")
	ver, part, ok2 := strings.Cut(rest, "/")
	v, err1 := strconv.Atoi(ver)
	p, err2 := strconv.ParseInt(part, 10, 32)
	if !ok1 || !ok2 || err1 != nil || err2 != nil {
		return ReadyMark{}, false
	}
	return ReadyMark{View: view, Version: v, Partition: int32(p)}, true
}

// MarkReady records marks in the registry log.
func (r *Registry) MarkReady(ctx context.Context, marks ...ReadyMark) error {
	recs := make([]Record, len(marks))
	for i, m := range marks {
		v, err := json.Marshal(readyValue{m.Partitions})
		if err != nil {
			return err
		}
		recs[i] = Record{Key: m.recordKey(), Value: v}
	}
	if err := r.log.Append(ctx, recs); err != nil {
		return fmt.Errorf("%w: %w", ErrRegistryUnavailable, err)
	}
	r.splitReady(recs)
	return nil
}

// Marked reports whether the registry holds a mark (its view, version,
// partition and kind).
func (r *Registry) Marked(m ReadyMark) bool {
	r.readyMu.Lock()
	defer r.readyMu.Unlock()
	p := r.ready[m.key()]
	return p != nil && p.marked[m.Partition]
}

// Ready reports whether every partition of a view version is marked.
func (r *Registry) Ready(view string, version int) bool {
	r.readyMu.Lock()
	defer r.readyMu.Unlock()
	return r.complete(readyKey{view, version, false})
}

// Rerouted reports whether every partition of the stream of a view
// version keyed by another entity is marked re-keyed.
func (r *Registry) Rerouted(view string, version int) bool {
	r.readyMu.Lock()
	defer r.readyMu.Unlock()
	return r.complete(readyKey{view, version, true})
}

func (r *Registry) complete(k readyKey) bool {
	p := r.ready[k]
	return p != nil && p.partitions > 0 && int32(len(p.marked)) >= p.partitions
}

// building says whether a view's previous version should stay the one
// to serve when the view is updated again: it is ready while the current
// version is not. A log written before marks existed has none; the
// current version then becomes the previous one, as it did then.
func (r *Registry) building(repo *Repo, view string) bool {
	v, prev := repo.Views[view], repo.Previous[view]
	if v == nil || prev == nil {
		return false
	}
	r.readyMu.Lock()
	defer r.readyMu.Unlock()
	return !r.complete(readyKey{view, v.Version, false}) && r.complete(readyKey{view, prev.Version, false})
}

// staleMarks returns tombstones for the marks of view versions that next
// neither serves nor builds.
func (r *Registry) staleMarks(next *Repo) []Record {
	r.readyMu.Lock()
	defer r.readyMu.Unlock()
	var out []Record
	for k, p := range r.ready {
		if v := next.Views[k.view]; v != nil && v.Version == k.version {
			continue
		}
		if v := next.Previous[k.view]; v != nil && v.Version == k.version {
			continue
		}
		for part := range p.marked {
			m := ReadyMark{View: k.view, Version: k.version, Partition: part, Rerouted: k.rerouted}
			out = append(out, Record{Key: m.recordKey()})
		}
	}
	return out
}
