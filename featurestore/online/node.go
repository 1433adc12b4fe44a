package online

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"github.com/segmentio/ksuid"
)

// nodeKey holds the store's node id. It never goes to a changelog.
var nodeKey = []byte("n\x00id")

// NodeID returns the id of the node that owns the store, made the first
// time it is asked for and kept with the state: a worker restarted on the
// same data dir has the same id.
func (s *Store) NodeID() (string, error) {
	var id string
	err := s.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(nodeKey)
		switch {
		case err == nil:
			return item.Value(func(v []byte) error {
				id = string(v)
				return nil
			})
		case !errors.Is(err, badger.ErrKeyNotFound):
			return err
		}
		id = ksuid.New().String()
		return txn.Set(nodeKey, []byte(id))
	})
	if err != nil {
		return "", fmt.Errorf("online store: node id: %w", err)
	}
	return id, nil
}

// runKey holds the number of the store's last run (StartRun).
var runKey = []byte("n\x00run")

// StartRun numbers a new run of the node that owns the store and returns
// the number of the run before it (0 for the first). A worker names its
// Kafka transactions after its run, so that each run writes under a
// producer of its own, and ends what the run before left open.
func (s *Store) StartRun() (previous, current uint64, err error) {
	err = s.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(runKey)
		switch {
		case err == nil:
			if err := item.Value(func(v []byte) error {
				if len(v) != 8 {
					return fmt.Errorf("run number of %d bytes", len(v))
				}
				previous = binary.BigEndian.Uint64(v)
				return nil
			}); err != nil {
				return err
			}
		case !errors.Is(err, badger.ErrKeyNotFound):
			return err
		}
		current = previous + 1
		return txn.Set(runKey, binary.BigEndian.AppendUint64(nil, current))
	})
	if err != nil {
		return 0, 0, fmt.Errorf("online store: start a run: %w", err)
	}
	return previous, current, nil
}
