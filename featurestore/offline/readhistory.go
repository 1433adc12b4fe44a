package offline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sluicehq/sluice/schemas"
)

// ReadHistory is History for a process that does not run the store's
// Sink, such as a stream worker beside an offline worker on the same data
// directory: the offsets it returns, and reads below, are those of the
// latest committed row of each partition, as the file names tell, lowered
// to the first offset of any commit still in progress (its temporary
// files), so that a commit seen half renamed is left out whole. The names
// are listed until two listings agree. Records after the last row that the
// sink committed without writing a row (invalid ones) are left to the
// caller. A compaction that swaps files while it reads can make it fail,
// or hand a row twice: retry, and skip event ids already seen.
func ReadHistory(ctx context.Context, dir, stream string, schema *schemas.Schema, opts HistoryOptions, fn func(*Row) error) (map[int32]int64, error) {
	below, err := stableBelow(dir, stream)
	if err != nil {
		return nil, fmt.Errorf("history of stream %q: %w", stream, err)
	}
	if opts.Below != nil {
		for p, next := range below {
			if bound, ok := opts.Below[p]; ok {
				below[p] = min(next, bound)
			} else {
				delete(below, p)
			}
		}
	}
	opts.Below = below
	if err := Scan(ctx, dir, stream, schema, opts, fn); err != nil {
		return nil, err
	}
	return below, nil
}

// stableBelow lists a stream's files until two listings agree and returns
// the offsets below which every row is in a committed file.
func stableBelow(dir, stream string) (map[int32]int64, error) {
	prev, err := listStream(dir, stream)
	if err != nil {
		return nil, err
	}
	for range 10 {
		names, err := listStream(dir, stream)
		if err != nil {
			return nil, err
		}
		if slices.Equal(prev, names) {
			return belowOf(names), nil
		}
		prev = names
	}
	return nil, errors.New("its files kept changing while listed; try again")
}

// listStream returns the paths of a stream's files, committed and
// temporary, relative to its directory ("date=.../name"), sorted.
func listStream(dir, stream string) ([]string, error) {
	root := streamDir(dir, stream)
	dates, err := dateDirs(root)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range dates {
		entries, err := os.ReadDir(filepath.Join(root, d))
		if err != nil {
			return nil, fmt.Errorf("list files: %w", err)
		}
		for _, e := range entries {
			if e.Type().IsRegular() {
				out = append(out, d+"/"+e.Name())
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// belowOf returns, per partition, the offset after its latest committed
// row, lowered to the first offset of a commit's temporary file (one not
// renamed yet, or left by a crash). A compaction's temporary file, which
// merges committed files of its day, lowers nothing: its rows are in them.
func belowOf(paths []string) map[int32]int64 {
	type span struct {
		dir         string
		p           int32
		first, last int64
	}
	var final, temp []span
	for _, path := range paths {
		dir, name := filepath.Split(path)
		if rest, ok := strings.CutPrefix(name, tempPrefix); ok {
			if p, first, last, ok := parseFileName(rest + fileExt); ok {
				temp = append(temp, span{dir, p, first, last})
			}
		} else if p, first, last, ok := parseFileName(name); ok {
			final = append(final, span{dir, p, first, last})
		}
	}
	below := map[int32]int64{}
	for _, f := range final {
		below[f.p] = max(below[f.p], f.last+1)
	}
	for _, t := range temp {
		merges := slices.ContainsFunc(final, func(f span) bool {
			return f.dir == t.dir && f.p == t.p && f.first >= t.first && f.last <= t.last
		})
		if next, ok := below[t.p]; ok && !merges {
			below[t.p] = min(next, t.first)
		}
	}
	return below
}
