package offline

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// Keys of the commit state in Badger:
//
//	i\x00<stream>\x00<event id>        -> empty: an event id stored, kept forever
//	o\x00<stream>\x00<partition BE32>  -> BE64 next offset to consume
//	pending                            -> JSON []rename still to do
const (
	idPrefix     = "i\x00"
	offsetPrefix = "o\x00"
	pendingKey   = "pending"
)

func idKey(stream, id string) []byte {
	return []byte(idPrefix + stream + "\x00" + id)
}

func offsetKey(k partKey) []byte {
	return binary.BigEndian.AppendUint32([]byte(offsetPrefix+k.stream+"\x00"), uint32(k.partition))
}

func parseOffsetKey(key []byte) (partKey, bool) {
	rest, ok := strings.CutPrefix(string(key), offsetPrefix)
	if !ok || len(rest) < 5 || rest[len(rest)-5] != 0 {
		return partKey{}, false
	}
	p := binary.BigEndian.Uint32([]byte(rest[len(rest)-4:]))
	return partKey{stream: rest[:len(rest)-5], partition: int32(p)}, true
}

// rename is one temporary file to move to its final name, both relative to
// the store's directory.
type rename struct {
	Temp  string `json:"temp"`
	Final string `json:"final"`
}

// loadOffsets reads the committed next offsets.
func loadOffsets(db *badger.DB) (map[partKey]int64, error) {
	out := map[partKey]int64{}
	err := db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = []byte(offsetPrefix)
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			k, ok := parseOffsetKey(item.Key())
			if !ok {
				return fmt.Errorf("malformed offset key %q", item.Key())
			}
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			if len(v) != 8 {
				return fmt.Errorf("offset of %s partition %d: malformed value %x", k.stream, k.partition, v)
			}
			out[k] = int64(binary.BigEndian.Uint64(v))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load committed offsets: %w", err)
	}
	return out, nil
}

// loadPending reads the renames a commit recorded and did not finish.
func loadPending(db *badger.DB) ([]rename, error) {
	var out []rename
	err := db.View(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(pendingKey))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error { return json.Unmarshal(v, &out) })
	})
	if err != nil {
		return nil, fmt.Errorf("load pending renames: %w", err)
	}
	return out, nil
}

// applyRenames moves committed temporary files to their final names, syncs
// their directories and deletes the record of pending renames. It is
// idempotent, so Open can repeat what a crash interrupted.
func (s *Sink) applyRenames(renames []rename) error {
	dirs := map[string]bool{}
	for i, r := range renames {
		temp, final := filepath.Join(s.dir, r.Temp), filepath.Join(s.dir, r.Final)
		dirs[filepath.Dir(final)] = true
		_, terr := os.Lstat(temp)
		_, ferr := os.Lstat(final)
		switch {
		case terr == nil && errors.Is(ferr, fs.ErrNotExist):
			if err := os.Rename(temp, final); err != nil {
				return fmt.Errorf("commit file: %w", err)
			}
		case terr == nil && ferr == nil:
			return fmt.Errorf("commit file %s: it already exists and so does the committed %s; "+
				"move one of them aside after checking which holds the rows", final, temp)
		case errors.Is(terr, fs.ErrNotExist) && ferr == nil:
			// Renamed before a crash.
		case errors.Is(terr, fs.ErrNotExist) && errors.Is(ferr, fs.ErrNotExist):
			return fmt.Errorf("commit file %s: the committed temporary file %s is missing; "+
				"its rows are lost from the offline store", final, temp)
		default:
			return fmt.Errorf("commit file %s: %w", final, errors.Join(terr, ferr))
		}
		if i == 0 && s.crashAt(crashMidRename) {
			return errCrash
		}
	}
	for d := range dirs {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Delete([]byte(pendingKey)) }); err != nil {
		return fmt.Errorf("clear pending renames: %w", err)
	}
	s.pendingRenames = false
	return nil
}

// recover rolls a commit interrupted by a crash forward and deletes the
// temporary files of commits that never happened.
func (s *Sink) recover() error {
	renames, err := loadPending(s.db)
	if err != nil {
		return err
	}
	if len(renames) > 0 {
		if err := s.applyRenames(renames); err != nil {
			return fmt.Errorf("finish interrupted commit: %w", err)
		}
		s.log.Info("finished an interrupted commit", "files", len(renames))
	}
	if err := s.recoverCompactions(); err != nil {
		return err
	}
	removed := 0
	err = filepath.WalkDir(filepath.Join(s.dir, streamsDir), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && strings.HasPrefix(d.Name(), tempPrefix) {
			if err := os.Remove(path); err != nil {
				return err
			}
			removed++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("remove uncommitted files: %w", err)
	}
	if removed > 0 {
		s.log.Warn("removed files of an uncommitted flush", "files", removed)
	}
	return nil
}

// badgerLogger sends Badger's logs to slog; its chatter goes to debug.
type badgerLogger struct{ log *slog.Logger }

func (l badgerLogger) Errorf(f string, a ...any)   { l.emit(slog.LevelError, f, a) }
func (l badgerLogger) Warningf(f string, a ...any) { l.emit(slog.LevelWarn, f, a) }
func (l badgerLogger) Infof(f string, a ...any)    { l.emit(slog.LevelDebug, f, a) }
func (l badgerLogger) Debugf(f string, a ...any)   { l.emit(slog.LevelDebug, f, a) }

func (l badgerLogger) emit(level slog.Level, f string, a []any) {
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return
	}
	l.log.Log(ctx, level, strings.TrimSpace(fmt.Sprintf(f, a...)), "source", "badger")
}
