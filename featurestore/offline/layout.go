package offline

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The names of the store's layout.
const (
	streamsDir = "streams"
	stateDir   = "_state"
	tempPrefix = ".tmp-"
	datePrefix = "date="
	fileExt    = ".parquet"
)

// streamDir returns the directory of a stream's files.
func streamDir(dir, stream string) string { return filepath.Join(dir, streamsDir, stream) }

// dateDirName returns the name of the directory of events at time us (µs).
func dateDirName(us int64) string {
	return datePrefix + time.UnixMicro(us).UTC().Format(time.DateOnly)
}

// fileName returns the name of a file holding offsets first to last of a
// partition.
func fileName(partition int32, first, last int64) string {
	return fmt.Sprintf("part-p%d-%d-%d%s", partition, first, last, fileExt)
}

// parseFileName is the inverse of fileName.
func parseFileName(name string) (partition int32, first, last int64, ok bool) {
	rest, found := strings.CutPrefix(name, "part-p")
	if !found {
		return 0, 0, 0, false
	}
	rest, found = strings.CutSuffix(rest, fileExt)
	if !found {
		return 0, 0, 0, false
	}
	parts := strings.Split(rest, "-")
	if len(parts) != 3 {
		return 0, 0, 0, false
	}
	p, err1 := strconv.ParseInt(parts[0], 10, 32)
	f, err2 := strconv.ParseInt(parts[1], 10, 64)
	l, err3 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, 0, 0, false
	}
	return int32(p), f, l, true
}

// tempName returns the temporary name a file is written under. It does not
// end in .parquet, so engines globbing for Parquet files never see it.
func tempName(final string) string {
	return tempPrefix + strings.TrimSuffix(final, fileExt)
}

// validStream reports whether a stream name is safe as one path element.
func validStream(name string) bool {
	return name != "" && name != "." && name != ".." &&
		!strings.ContainsAny(name, `/\`+"\x00") && !strings.HasPrefix(name, tempPrefix)
}

// syncDir makes a directory's entries durable.
func syncDir(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", path, err)
	}
	return nil
}

// ensureDir creates path and its missing parents, syncing the parent of each
// directory it creates so the new entry survives a crash.
func ensureDir(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	parent := filepath.Dir(path)
	if parent != path {
		if err := ensureDir(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(path, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(parent)
}
