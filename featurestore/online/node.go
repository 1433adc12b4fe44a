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

// runKey holds the number of the store's last run (SetRun).
var runKey = []byte("n\x00run")

// LastRun returns the number of the store's last run (SetRun), 0 before the
// first. A worker names its Kafka transactions after its run, so that
// each run writes under a producer of its own, and ends what the run
// before left open.
func (s *Store) LastRun() (uint64, error) {
	var run uint64
	err := s.db.View(func(txn *badger.Txn) (err error) {
		run, err = readNumber(txn, runKey, "run number")
		return err
	})
	return run, err
}

// SetRun records the number of a new run.
func (s *Store) SetRun(run uint64) error {
	err := s.db.Update(func(txn *badger.Txn) error {
		return txn.Set(runKey, binary.BigEndian.AppendUint64(nil, run))
	})
	if err != nil {
		return fmt.Errorf("online store: record run %d: %w", run, err)
	}
	return nil
}
