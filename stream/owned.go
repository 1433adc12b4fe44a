package stream

import (
	"maps"
	"slices"
	"sync"
)

// ownership records which partitions of which topics a worker's consumer
// owns, so that its lag and its view versions' catch-up are judged on them
// alone: its store also holds offsets of partitions it owned before a
// rebalance, which other workers move on. While it owns nothing (before
// its first assignment, between consumers) every partition counts.
type ownership struct {
	mu    sync.Mutex
	parts map[string]map[int32]bool
	// seen holds, per owned partition, its end offset when the worker
	// first judged it after it was assigned (endSince).
	seen map[string]map[int32]int64
}

func (o *ownership) assign(m map[string][]int32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.parts == nil {
		o.parts = map[string]map[int32]bool{}
	}
	for topic, ps := range m {
		if o.parts[topic] == nil {
			o.parts[topic] = map[int32]bool{}
		}
		for _, p := range ps {
			o.parts[topic][p] = true
		}
	}
}

// revoke forgets partitions; nil forgets every one.
func (o *ownership) revoke(m map[string][]int32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if m == nil {
		o.parts, o.seen = nil, nil
	}
	for topic, ps := range m {
		for _, p := range ps {
			delete(o.parts[topic], p)
			delete(o.seen[topic], p)
		}
		if len(o.parts[topic]) == 0 {
			delete(o.parts, topic)
		}
	}
}

// endSince returns the end offset of an owned partition as it was when
// first asked for since the partition was assigned, recording end when
// this is the first time. A worker given a partition that it holds no
// progress of replays it, its job's offsets with the rest: its records up
// to that end were there before the worker, so they are its history.
func (o *ownership) endSince(topic string, p int32, end int64) int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.seen == nil {
		o.seen = map[string]map[int32]int64{}
	}
	if o.seen[topic] == nil {
		o.seen[topic] = map[int32]int64{}
	}
	if first, ok := o.seen[topic][p]; ok {
		return first
	}
	o.seen[topic][p] = end
	return end
}

// counts reports whether a partition of a topic counts for this worker.
func (o *ownership) counts(topic string, p int32) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.parts) == 0 || o.parts[topic][p]
}

// owned lists the partitions of a topic the worker owns.
func (o *ownership) owned(topic string) []int32 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Sorted(maps.Keys(o.parts[topic]))
}
