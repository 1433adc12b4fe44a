package train_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/sluicehq/sluice/schemas"
	"github.com/sluicehq/sluice/train"
)

func Example() {
	base, err := os.MkdirTemp("", "dataset")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(base)
	dir := filepath.Join(base, "fraud_train")

	w, err := train.NewWriter(dir, []train.Column{
		{Name: "user_id", Type: schemas.String},
		{Name: "timestamp", Type: schemas.Timestamp},
		{Name: "is_fraud", Type: schemas.Bool},
		{Name: "user_txn__amount_sum_24h", Type: schemas.Float64, Feature: true},
		{Name: "user_txn__recent", Type: schemas.Float64, Nullable: true, List: true, Feature: true},
	}, train.WriterOptions{RowsPerPart: 2})
	if err != nil {
		log.Fatal(err)
	}
	for _, row := range [][]any{
		{"u1", int64(1772366400000000), false, 12.5, []any{12.5}},
		{"u2", int64(1772366401000000), true, 900.0, []any{450.0, 450.0}},
		{"u1", int64(1772366402000000), false, 20.0, nil},
	} {
		if err := w.Write(row); err != nil {
			log.Fatal(err)
		}
	}
	m, err := w.Close(train.Manifest{
		Mode:     train.ModeEventTime,
		Spine:    "spine.csv",
		Label:    "is_fraud",
		Features: []train.FeatureRef{{View: "user_txn", Feature: "amount_sum_24h", Version: 1, Column: "user_txn__amount_sum_24h"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range m.Files {
		fmt.Println(f.Path, f.Rows)
	}

	p, err := train.ReadProfile(dir)
	if err != nil {
		log.Fatal(err)
	}
	sum := p.Feature("user_txn__amount_sum_24h")
	fmt.Printf("mean %.2f, min %v, max %v, 20.0 in bin %d of %d\n", *sum.Mean, *sum.Min, *sum.Max, sum.Bin(20), len(sum.Histogram))
	// Output:
	// part-00000.parquet 2
	// part-00001.parquet 1
	// mean 310.83, min 12.5, max 900, 20.0 in bin 6 of 12
}

func ExampleWriter_WriteBlock() {
	base, err := os.MkdirTemp("", "dataset")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(base)
	dir := filepath.Join(base, "fraud_train")

	w, err := train.NewWriter(dir, []train.Column{
		{Name: "user_id", Type: schemas.String},
		{Name: "timestamp", Type: schemas.Timestamp},
		{Name: "user_txn__last_amount", Type: schemas.Float64, Nullable: true, Feature: true},
	}, train.WriterOptions{})
	if err != nil {
		log.Fatal(err)
	}
	// Three rows, column by column; the third row has no amount.
	err = w.WriteBlock(train.Block{Rows: 3, Cols: []train.Vector{
		{Str: []string{"u1", "u2", "u1"}},
		{Int: []int64{1772366400000000, 1772366401000000, 1772366402000000}},
		{Float: []float64{12.5, 900, 0}, Null: []bool{false, false, true}},
	}})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := w.Close(train.Manifest{Spine: "spine.csv"}); err != nil {
		log.Fatal(err)
	}
	if _, err := train.ReadRows(dir, func(row []any) error {
		fmt.Println(row...)
		return nil
	}); err != nil {
		log.Fatal(err)
	}
	// Output:
	// u1 1772366400000000 12.5
	// u2 1772366401000000 900
	// u1 1772366402000000 <nil>
}
