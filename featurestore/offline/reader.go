package offline

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// Files returns the paths of a stream's committed Parquet files under the
// store's directory dir, ordered by date, partition and first offset. Files
// a compaction has replaced but not yet deleted are left out.
func Files(dir, stream string) ([]string, error) {
	type file struct {
		date      string
		partition int32
		first     int64
		path      string
	}
	root := streamDir(dir, stream)
	dates, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list files of stream %q: %w", stream, err)
	}
	var files []file
	for _, d := range dates {
		if !d.IsDir() || !strings.HasPrefix(d.Name(), datePrefix) {
			continue
		}
		entries, err := os.ReadDir(filepath.Join(root, d.Name()))
		if err != nil {
			return nil, fmt.Errorf("list files of stream %q: %w", stream, err)
		}
		for _, e := range entries {
			p, first, _, ok := parseFileName(e.Name())
			if ok && e.Type().IsRegular() {
				files = append(files, file{d.Name(), p, first, filepath.Join(root, d.Name(), e.Name())})
			}
		}
	}
	slices.SortFunc(files, func(a, b file) int {
		return cmp.Or(cmp.Compare(a.date, b.date), cmp.Compare(a.partition, b.partition), cmp.Compare(a.first, b.first))
	})
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = f.path
	}
	return withoutReplaced(paths), nil
}

// ReadStream reads every committed row of a stream, file by file in the
// order of Files, as ReadFile does. A column that some files lack, because a
// later schema version added it, is present and nil in their rows.
func ReadStream(dir, stream string) ([]map[string]any, error) {
	paths, err := Files(dir, stream)
	if err != nil {
		return nil, err
	}
	var rows []map[string]any
	columns := map[string]bool{}
	for _, p := range paths {
		fileRows, err := ReadFile(p)
		if err != nil {
			return nil, err
		}
		for _, r := range fileRows {
			for c := range r {
				columns[c] = true
			}
		}
		rows = append(rows, fileRows...)
	}
	for _, r := range rows {
		for c := range columns {
			if _, ok := r[c]; !ok {
				r[c] = nil
			}
		}
	}
	return rows, nil
}

// ReadFile reads every row of a flat Parquet file, such as the offline
// store's, with column names as keys. Values are string (a UTF-8 byte
// array), []byte (another byte array), int32, int64, float32, float64, bool,
// or time.Time in UTC for a timestamp column; null is nil.
func ReadFile(path string) ([]map[string]any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	fields := pf.Schema().Fields()
	decoders := make([]func(parquet.Value) any, len(fields))
	for i, field := range fields {
		if !field.Leaf() || field.Repeated() {
			return nil, fmt.Errorf("read %s: column %q is nested or repeated; only flat files are read", path, field.Name())
		}
		decoders[i] = decoderOf(field.Type())
	}
	r := parquet.NewReader(pf)
	defer r.Close()
	var out []map[string]any
	buf := make([]parquet.Row, 256)
	for {
		n, err := r.ReadRows(buf)
		for _, row := range buf[:n] {
			m := make(map[string]any, len(fields))
			for _, v := range row {
				c := v.Column()
				if v.IsNull() {
					m[fields[c].Name()] = nil
				} else {
					m[fields[c].Name()] = decoders[c](v)
				}
			}
			out = append(out, m)
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
	}
}

// decoderOf returns how to turn values of a column type into Go values.
func decoderOf(t parquet.Type) func(parquet.Value) any {
	if lt := t.LogicalType(); lt != nil {
		switch x := lt.Value.(type) {
		case *format.TimestampType:
			switch x.Unit.Value.(type) {
			case *format.MilliSeconds:
				return func(v parquet.Value) any { return time.UnixMilli(v.Int64()).UTC() }
			case *format.NanoSeconds:
				return func(v parquet.Value) any { return time.Unix(0, v.Int64()).UTC() }
			default:
				return func(v parquet.Value) any { return time.UnixMicro(v.Int64()).UTC() }
			}
		case *format.StringType:
			return func(v parquet.Value) any { return string(v.ByteArray()) }
		}
	}
	switch t.Kind() {
	case parquet.Boolean:
		return func(v parquet.Value) any { return v.Boolean() }
	case parquet.Int32:
		return func(v parquet.Value) any { return v.Int32() }
	case parquet.Int64:
		return func(v parquet.Value) any { return v.Int64() }
	case parquet.Float:
		return func(v parquet.Value) any { return v.Float() }
	case parquet.Double:
		return func(v parquet.Value) any { return v.Double() }
	}
	return func(v parquet.Value) any { return slices.Clone(v.ByteArray()) }
}
