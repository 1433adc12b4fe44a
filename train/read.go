package train

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/parquet-go/parquet-go"

	"github.com/sluicehq/sluice/schemas"
)

// ReadRows calls fn with every row of a finished dataset, part by part, in
// the order written: one value per manifest column, typed as Writer.Write
// takes them. fn must not keep row.
func ReadRows(dir string, fn func(row []any) error) (Manifest, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return m, err
	}
	row := make([]any, len(m.Columns))
	for _, f := range m.Files {
		if err := readPart(filepath.Join(dir, f.Path), m.Columns, row, fn); err != nil {
			return m, err
		}
	}
	return m, nil
}

func readPart(path string, cols []Column, row []any, fn func([]any) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read dataset part: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		return fmt.Errorf("read dataset part %s: %w", path, err)
	}
	r := parquet.NewReader(pf)
	defer r.Close()
	buf := make([]parquet.Row, 256)
	for {
		n, err := r.ReadRows(buf)
		for _, pr := range buf[:n] {
			if err := decodeRow(pr, cols, row); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if err := fn(row); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read dataset part %s: %w", path, err)
		}
	}
}

// decodeRow turns one Parquet row (leaf values in column order) into
// values.
func decodeRow(pr parquet.Row, cols []Column, row []any) error {
	for i := range row {
		row[i] = nil
	}
	var lists = map[int][]any{}
	for _, v := range pr {
		c := v.Column()
		if c < 0 || c >= len(cols) {
			return fmt.Errorf("column %d beyond the manifest's %d", c, len(cols))
		}
		col := cols[c]
		base := 0
		if col.Nullable {
			base = 1
		}
		if !col.List {
			if v.DefinitionLevel() >= base && !v.IsNull() {
				row[c] = leaf(col.Type, v)
			}
			continue
		}
		switch d := v.DefinitionLevel(); {
		case d < base: // a null list
		case d == base:
			lists[c] = []any{} // an empty list
		case d == base+1:
			lists[c] = append(lists[c], nil)
		default:
			lists[c] = append(lists[c], leaf(col.Type, v))
		}
	}
	for c, l := range lists {
		row[c] = l
	}
	return nil
}

func leaf(t schemas.Type, v parquet.Value) any {
	switch t {
	case schemas.String:
		return string(v.ByteArray())
	case schemas.Float64:
		return v.Double()
	case schemas.Bool:
		return v.Boolean()
	}
	return v.Int64()
}
