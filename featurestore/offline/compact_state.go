package offline

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dgraph-io/badger/v4"
)

// Points of a compaction where tests stop it as a crash would.
const (
	crashCompactBeforeRecord = "compact-before-record" // merged file written and synced
	crashCompactAfterRecord  = "compact-after-record"  // Badger transaction committed
	crashCompactAfterRename  = "compact-after-rename"  // merged file under its final name
	crashCompactMidDelete    = "compact-mid-delete"    // first replaced file deleted
)

// compactPrefix starts the Badger keys of compactions recorded and not
// finished:
//
//	c\x00<final path> -> JSON compaction
const compactPrefix = "c\x00"

// compaction is one recorded swap: the file at Temp becomes Final and
// replaces the files Inputs. Paths are relative to the store's directory.
type compaction struct {
	Temp   string   `json:"temp"`
	Final  string   `json:"final"`
	Inputs []string `json:"inputs"`
}

func compactKey(final string) []byte { return []byte(compactPrefix + filepath.ToSlash(final)) }

// swap records a merged file's compaction and carries it out, holding the
// sink's lock so that no flush runs in between, and waiting for History
// scans to end.
func (s *Sink) swap(rec compaction) error {
	s.swapMu.Lock()
	defer s.swapMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	temp := filepath.Join(s.dir, rec.Temp)
	switch {
	case s.crashed:
		return errCrash
	case s.closed:
		os.Remove(temp)
		return ErrClosed
	case s.crashAt(crashCompactBeforeRecord):
		return errCrash
	}
	v, err := json.Marshal(rec)
	if err == nil {
		err = s.db.Update(func(txn *badger.Txn) error { return txn.Set(compactKey(rec.Final), v) })
	}
	if err != nil {
		os.Remove(temp)
		return fmt.Errorf("record compaction into %s: %w", rec.Final, err)
	}
	if s.crashAt(crashCompactAfterRecord) {
		return errCrash
	}
	return s.finishCompaction(rec)
}

// finishCompaction moves a recorded compaction's file to its final name,
// deletes the files it replaces and clears the record. It is idempotent, so
// Open and the next Compact can repeat what a crash or an error interrupted.
func (s *Sink) finishCompaction(rec compaction) error {
	temp, final := filepath.Join(s.dir, rec.Temp), filepath.Join(s.dir, rec.Final)
	dir := filepath.Dir(final)
	_, terr := os.Lstat(temp)
	_, ferr := os.Lstat(final)
	switch {
	case terr == nil && errors.Is(ferr, fs.ErrNotExist):
		if err := os.Rename(temp, final); err != nil {
			return fmt.Errorf("finish compaction: %w", err)
		}
		if err := syncDir(dir); err != nil {
			return fmt.Errorf("finish compaction: %w", err)
		}
	case errors.Is(terr, fs.ErrNotExist) && ferr == nil:
		// Renamed before a crash.
	case terr == nil && ferr == nil:
		return fmt.Errorf("finish compaction into %s: it already exists and so does the merged %s; "+
			"check which holds the rows of %v and move the other aside", final, temp, rec.Inputs)
	case errors.Is(terr, fs.ErrNotExist) && errors.Is(ferr, fs.ErrNotExist):
		return s.abandonCompaction(rec)
	default:
		return fmt.Errorf("finish compaction into %s: %w", final, errors.Join(terr, ferr))
	}
	if s.crashAt(crashCompactAfterRename) {
		return errCrash
	}
	for i, in := range rec.Inputs {
		if err := os.Remove(filepath.Join(s.dir, in)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("finish compaction into %s: %w", rec.Final, err)
		}
		if i == 0 && s.crashAt(crashCompactMidDelete) {
			return errCrash
		}
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("finish compaction: %w", err)
	}
	return s.clearCompaction(rec)
}

// abandonCompaction clears the record of a compaction whose merged file is
// gone, which is safe only while every file it was to replace remains.
func (s *Sink) abandonCompaction(rec compaction) error {
	for _, in := range rec.Inputs {
		if _, err := os.Lstat(filepath.Join(s.dir, in)); err != nil {
			return fmt.Errorf("finish compaction into %s: the merged file is missing and so is %s; "+
				"the rows of the files it replaced are lost from the offline store: %w", rec.Final, in, err)
		}
	}
	s.log.Warn("abandoned a compaction whose merged file is missing; its files stay", "file", rec.Final)
	return s.clearCompaction(rec)
}

func (s *Sink) clearCompaction(rec compaction) error {
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Delete(compactKey(rec.Final)) }); err != nil {
		return fmt.Errorf("clear compaction record of %s: %w", rec.Final, err)
	}
	return nil
}

// loadCompactions reads the compactions recorded and not finished.
func loadCompactions(db *badger.DB) ([]compaction, error) {
	var out []compaction
	err := db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = []byte(compactPrefix)
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var rec compaction
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &rec) }); err != nil {
				return fmt.Errorf("compaction record %q: %w", it.Item().Key(), err)
			}
			out = append(out, rec)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load compaction records: %w", err)
	}
	return out, nil
}

// finishCompactions finishes every recorded compaction, under the sink's
// lock. Compact calls it first, so that one a failed rename or delete left
// is done before another starts.
func (s *Sink) finishCompactions() error {
	s.swapMu.Lock()
	defer s.swapMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case s.crashed:
		return errCrash
	}
	return s.recoverCompactions()
}

// recoverCompactions rolls recorded compactions forward. Open calls it
// before deleting temporary files, so a recorded merged file is kept and an
// unrecorded one deleted.
func (s *Sink) recoverCompactions() error {
	recs, err := loadCompactions(s.db)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		if err := s.finishCompaction(rec); err != nil {
			return err
		}
	}
	if len(recs) > 0 {
		s.log.Info("finished interrupted compactions", "compactions", len(recs))
	}
	return nil
}
