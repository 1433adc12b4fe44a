package train

import (
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/schemas"
)

func TestReadRowsRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ds")
	cols := []Column{
		{Name: "user_id", Type: schemas.String},
		{Name: "timestamp", Type: schemas.Timestamp},
		{Name: "n", Type: schemas.Int64, Feature: true},
		{Name: "x", Type: schemas.Float64, Nullable: true, Feature: true},
		{Name: "b", Type: schemas.Bool, Nullable: true, Feature: true},
		{Name: "l", Type: schemas.String, Nullable: true, List: true, Feature: true},
		{Name: "r", Type: schemas.Int64, List: true, Feature: true},
	}
	rows := [][]any{
		{"u1", int64(10), int64(3), 1.5, true, []any{"a", nil, "c"}, []any{int64(1)}},
		{"u2", int64(20), int64(0), nil, nil, nil, []any{}},
		{"u3", int64(30), int64(-4), -0.25, false, []any{}, []any{int64(2), int64(3)}},
	}
	w, err := NewWriter(dir, cols, WriterOptions{RowsPerPart: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Close(Manifest{Mode: ModeEventTime, Spine: "s.csv"}); err != nil {
		t.Fatal(err)
	}
	var got [][]any
	if _, err := ReadRows(dir, func(row []any) error {
		got = append(got, append([]any(nil), row...))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rows, got); diff != "" {
		t.Errorf("rows read back (-written +read):\n%s", diff)
	}
}
