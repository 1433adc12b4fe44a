package online

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/sluicehq/sluice/featurestore/window"
)

// An entity's state of a view version is stored as one record per tile and
// one base record (window.State), beside its raw events, which reads need
// only for a head tile that t cuts:
//
//	t\0<view>\0 version keylen key grid start   a tile
//	b\0<view>\0 version keylen key              the base
//	e\0<view>\0 version keylen key time seq     a raw event

func statePrefix(tag byte, view string, version int, key string) []byte {
	b := append([]byte{tag, 0}, view...)
	b = append(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(version))
	b = binary.BigEndian.AppendUint32(b, uint32(len(key)))
	return append(b, key...)
}

func tileKey(view string, version int, key string, grid int, start int64) []byte {
	b := statePrefix('t', view, version, key)
	b = binary.BigEndian.AppendUint16(b, uint16(grid))
	return binary.BigEndian.AppendUint64(b, uint64(start)^signBit)
}

func baseKey(view string, version int, key string) []byte {
	return statePrefix('b', view, version, key)
}

// loadState reads an entity's state; a missing entity gives an empty one.
func loadState(r *stateReader, view string, version int, key string, l *window.Layout) (*window.State, error) {
	st := l.NewState()
	entity := statePrefix('b', view, version, key)
	found, err := r.get(entity, entity, func(v []byte) error { return l.DecodeBase(v, st) })
	switch {
	case err != nil:
		return nil, fmt.Errorf("online store: read state of %s %q: %w", view, key, err)
	case !found:
		// The base is written with an entity's first event: without it
		// there are no tiles either.
		return st, nil
	}
	prefix := statePrefix('t', view, version, key)
	err = r.scan(entity, prefix, prefix, nil, func(k, v []byte) error {
		rest := k[len(prefix):]
		if len(rest) != 10 {
			return window.ErrCorrupt
		}
		g := int(binary.BigEndian.Uint16(rest))
		start := int64(binary.BigEndian.Uint64(rest[2:]) ^ signBit)
		if g == l.Long && start < st.Horizon {
			// Folded into the base, which holds its events: only its
			// deletion is missing, as when a changelog that a worker
			// caught up from had compacted the deletion away.
			return nil
		}
		tile, err := l.DecodeTile(v, g, start)
		if err != nil {
			return err
		}
		st.Put(g, tile)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("online store: %s %q: %w", view, key, err)
	}
	return st, nil
}

// PutState writes what changed in an entity's state: dirty tiles, tiles
// folded into the base (deleted), and the base. With keep > 0, tiles of
// windowed grids expire keep after their end, as does the base of a view without a long
// grid once its last tile has; the long grid's tiles and base do not
// expire, since lifetime values need them. It does not clear the state's
// flags; call State.Sweep once the batch commits.
func (b *Batch) PutState(view string, version int, key string, l *window.Layout, st *window.State, keep int64) error {
	var lastEnd int64
	for g, tiles := range st.Tiles {
		w := l.Grids[g].Width
		for _, t := range tiles {
			lastEnd = max(lastEnd, t.Start+w)
			if !t.Dirty && !t.Deleted {
				continue
			}
			k := tileKey(view, version, key, g, t.Start)
			if t.Deleted {
				if err := b.del(view, k); err != nil {
					return err
				}
				continue
			}
			var expires uint64
			if g != l.Long && keep > 0 {
				expires = expiry(t.Start + w + keep)
			}
			if err := b.put(view, k, l.AppendTile(nil, g, t), expires); err != nil {
				return err
			}
		}
	}
	if !st.BaseDirty {
		return nil
	}
	var expires uint64
	if l.Long < 0 && keep > 0 {
		expires = expiry(lastEnd + keep)
	}
	return b.put(view, baseKey(view, version, key), l.AppendBase(nil, st), expires)
}

// expiry converts an event time in µs to a Badger expiry in Unix seconds,
// rounded up and never 0 (which means never).
func expiry(us int64) uint64 { return uint64(max(1, us/1_000_000+1)) }

// put writes one entry of view state and records it as a change.
func (b *Batch) put(view string, k, v []byte, expires uint64) error {
	if err := b.set(&badger.Entry{Key: k, Value: v, ExpiresAt: expires}); err != nil {
		return err
	}
	b.changes = append(b.changes, Change{View: view, Partition: b.partition, Key: k, Value: v, ExpiresAt: expires})
	return nil
}

// del removes one entry of view state and records a tombstone.
func (b *Batch) del(view string, k []byte) error {
	if err := b.txn.Delete(k); err != nil {
		if errors.Is(err, badger.ErrTxnTooBig) {
			return ErrBatchFull
		}
		return fmt.Errorf("online store: %w", err)
	}
	b.changes = append(b.changes, Change{View: view, Partition: b.partition, Key: k})
	return nil
}

// ReadState calls fn with the state of each entity key of a view version
// and a RawFunc over its raw events, from one consistent snapshot with the
// staged batches (Batch.Stage) over it. Neither may be used after fn
// returns.
func (s *Store) ReadState(view string, version int, keys []string, l *window.Layout, fn func(i int, st *window.State, raw window.RawFunc) error) error {
	return s.view(func(r *stateReader) error {
		for i, k := range keys {
			st, err := loadState(r, view, version, k, l)
			if err != nil {
				return err
			}
			var rawErr error
			raw := func(start, end int64) []window.Event {
				evs, err := readRaw(r, view, version, k, start, end)
				if err != nil && rawErr == nil {
					rawErr = err
				}
				return evs
			}
			if err := fn(i, st, raw); err != nil {
				return err
			}
			if rawErr != nil {
				return rawErr
			}
		}
		return nil
	})
}

// readRaw returns an entity's raw events with start <= time < end.
func readRaw(r *stateReader, view string, version int, key string, start, end int64) ([]window.Event, error) {
	prefix := entityPrefix(view, version, key)
	from := append(append([]byte(nil), prefix...), orderedUint(start)...)
	stop := append(append([]byte(nil), prefix...), orderedUint(end)...)
	var evs []window.Event
	err := r.scan(statePrefix('b', view, version, key), prefix, from, stop, func(k, v []byte) error {
		rest := k[len(prefix):]
		if len(rest) != 16 {
			return window.ErrCorrupt
		}
		ev := window.Event{
			Time: int64(binary.BigEndian.Uint64(rest) ^ signBit),
			Seq:  int64(binary.BigEndian.Uint64(rest[8:]) ^ signBit),
		}
		if err := decodeEvent(v, &ev); err != nil {
			return err
		}
		evs = append(evs, ev)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("online store: raw events of %s %q: %w", view, key, err)
	}
	return evs, nil
}
