package featurestore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// ErrRegistryUnavailable says definitions could not be stored: the registry
// log (Kafka) or the preparation of topics failed. Retry later.
var ErrRegistryUnavailable = errors.New("registry unavailable")

// Log stores the registry's records durably (the compacted sluice.registry
// topic in production).
type Log interface {
	Append(ctx context.Context, recs []Record) error
	ReadAll(ctx context.Context) ([]Record, error)
}

// Registry holds the current definitions, backed by a Log. It is safe for
// concurrent use; readers take snapshots with Repo.
type Registry struct {
	log Log
	// prepare runs before a plan is written, for example to create topics.
	prepare func(ctx context.Context, next *Repo) error

	mu       sync.Mutex
	repo     *Repo
	changed  chan struct{}
	datasets map[string][]byte // manifests by dataset id
	// readyMu guards ready apart from mu, which an apply holds while it
	// prepares topics and writes the log: stream workers read marks often.
	readyMu sync.Mutex
	ready   map[readyKey]*readyParts
}

// OpenRegistry loads the definitions from log. prepare (may be nil) runs
// before each applied plan is written.
func OpenRegistry(ctx context.Context, log Log, prepare func(ctx context.Context, next *Repo) error) (*Registry, error) {
	recs, err := log.ReadAll(ctx)
	if err != nil {
		return nil, err
	}
	reg := &Registry{log: log, prepare: prepare, repo: NewRepo(), changed: make(chan struct{}),
		datasets: map[string][]byte{}, ready: map[readyKey]*readyParts{}}
	if recs = reg.sideRecords(recs); len(recs) > 0 {
		if reg.repo, err = FromRecords(recs); err != nil {
			return nil, fmt.Errorf("load registry: %w", err)
		}
	}
	return reg, nil
}

// Repo returns the current definitions. Callers must not modify them.
func (r *Registry) Repo() *Repo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.repo
}

// Changed returns a channel closed at the next change of definitions.
func (r *Registry) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

// Apply plans next against the current definitions and, unless dryRun or
// nothing changed, writes and activates the result.
func (r *Registry) Apply(ctx context.Context, next *Repo, dryRun bool) (*Plan, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	plan, err := r.repo.plan(next, r.building)
	if err != nil {
		return nil, err
	}
	if dryRun || !plan.Changed() {
		return plan, nil
	}
	if r.prepare != nil {
		if err := r.prepare(ctx, plan.Next); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrRegistryUnavailable, err)
		}
	}
	recs, err := plan.Next.Records()
	if err != nil {
		return nil, err
	}
	live := map[string]bool{}
	for _, rec := range recs {
		live[rec.Key] = true
	}
	old, err := r.repo.Records()
	if err != nil {
		return nil, err
	}
	for _, rec := range old {
		if !live[rec.Key] {
			recs = append(recs, Record{Key: rec.Key})
		}
	}
	stale := r.staleMarks(plan.Next)
	if err := r.log.Append(ctx, append(recs, stale...)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRegistryUnavailable, err)
	}
	r.splitReady(stale)
	r.repo = plan.Next
	close(r.changed)
	r.changed = make(chan struct{})
	return plan, nil
}

// sideRecords files the records that live beside the definitions
// (dataset manifests, ready marks) and returns the definitions. Records of
// a kind this build does not know, written by a newer one, are left out:
// a node may run an older build for a while during an upgrade.
func (r *Registry) sideRecords(recs []Record) []Record {
	recs = r.splitReady(r.splitDatasets(recs))
	out := recs[:0:0]
	for _, rec := range recs {
		kind, _, _ := strings.Cut(rec.Key, "/")
		if slices.Contains(kinds, kind) || kind == KindPrevious {
			out = append(out, rec)
		}
	}
	return out
}

// Follower is a Log that can also deliver records written by other nodes.
type Follower interface {
	// Follow calls fn with every record of the log, from the start, in
	// batches, until ctx is done.
	Follow(ctx context.Context, fn func([]Record)) error
}

// Run keeps the registry in step with its log, so definitions another node
// applies take effect here too. It returns when ctx is done; with a log that
// cannot follow, it only waits.
func (r *Registry) Run(ctx context.Context) error {
	f, ok := r.log.(Follower)
	if !ok {
		<-ctx.Done()
		return nil
	}
	latest := map[string][]byte{}
	var order []string
	return f.Follow(ctx, func(batch []Record) {
		r.mu.Lock()
		batch = r.sideRecords(batch)
		r.mu.Unlock()
		for _, rec := range batch {
			if _, seen := latest[rec.Key]; !seen {
				order = append(order, rec.Key)
			}
			latest[rec.Key] = rec.Value
		}
		var recs []Record
		for _, k := range order {
			if latest[k] != nil {
				recs = append(recs, Record{Key: k, Value: latest[k]})
			}
		}
		// A batch may end inside another node's apply; an invalid state
		// waits for the rest.
		if next, err := FromRecords(recs); err == nil {
			r.adopt(next)
		}
	})
}

// adopt activates definitions read from the log unless they equal the
// current ones.
func (r *Registry) adopt(next *Repo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur, err1 := r.repo.Records()
	nxt, err2 := next.Records()
	if err1 == nil && err2 == nil && sameRecords(cur, nxt) {
		return
	}
	r.repo = next
	close(r.changed)
	r.changed = make(chan struct{})
}

func sameRecords(a, b []Record) bool {
	if len(a) != len(b) {
		return false
	}
	m := make(map[string]string, len(a))
	for _, r := range a {
		m[r.Key] = string(r.Value)
	}
	for _, r := range b {
		if v, ok := m[r.Key]; !ok || v != string(r.Value) {
			return false
		}
	}
	return true
}
