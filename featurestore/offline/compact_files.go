package offline

import (
	"cmp"
	"path/filepath"
	"slices"
)

// withoutReplaced leaves out of a list of committed file paths each file
// whose offset range lies inside another's of the same directory (date) and
// partition, keeping the order of the rest. Files of one date and partition
// hold disjoint offset ranges, except while a compaction swaps files: its
// merged file spans the ranges of the files it replaces until they are
// deleted. Listing through this function never counts a row twice.
func withoutReplaced(paths []string) []string {
	type span struct {
		dir         string
		partition   int32
		first, last int64
		index       int
	}
	spans := make([]span, 0, len(paths))
	for i, p := range paths {
		part, first, last, ok := parseFileName(filepath.Base(p))
		if ok {
			spans = append(spans, span{filepath.Dir(p), part, first, last, i})
		}
	}
	// Widest first among files that start at the same offset, so that a
	// replaced file always comes after the file that covers it.
	slices.SortFunc(spans, func(a, b span) int {
		return cmp.Or(cmp.Compare(a.dir, b.dir), cmp.Compare(a.partition, b.partition),
			cmp.Compare(a.first, b.first), cmp.Compare(b.last, a.last))
	})
	drop := map[int]bool{}
	var cover *span // the last file kept
	for i := range spans {
		cur := &spans[i]
		if cover != nil && cur.dir == cover.dir && cur.partition == cover.partition && cur.last <= cover.last {
			drop[cur.index] = true
			continue
		}
		cover = cur
	}
	if len(drop) == 0 {
		return paths
	}
	out := make([]string, 0, len(paths)-len(drop))
	for i, p := range paths {
		if !drop[i] {
			out = append(out, p)
		}
	}
	return out
}
