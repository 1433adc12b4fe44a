package offline_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sluicehq/sluice/featurestore/offline"
	"github.com/sluicehq/sluice/schemas"
)

func Example() {
	dir, err := os.MkdirTemp("", "offline")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	schema := &schemas.Schema{
		Stream:  "transactions",
		Version: 1,
		Fields: []schemas.Field{
			{Name: "user_id", Type: schemas.String},
			{Name: "amount", Type: schemas.Float64},
			{Name: "ts", Type: schemas.Timestamp},
		},
		TimeField: "ts",
		KeyFields: []string{"user_id"},
	}
	sink, err := offline.Open(dir, offline.Options{})
	if err != nil {
		panic(err)
	}
	defer sink.Close()

	ts := time.Date(2026, 5, 1, 12, 30, 0, 0, time.UTC).UnixMicro()
	for i, user := range []string{"u2", "u1", "u2"} {
		sink.Add(schema, offline.Row{
			Values:    []any{user, 10.0 * float64(i+1), ts},
			Key:       user,
			EventID:   fmt.Sprintf("evt-%d", i),
			EventTime: ts,
			Arrival:   ts + 1000,
			Partition: 0,
			Offset:    int64(40 + i),
		})
	}
	sink.Note("transactions", 0, 43) // an invalid record, sent to the dead-letter topic
	if err := sink.Flush(context.Background()); err != nil {
		panic(err)
	}

	files, _ := offline.Files(dir, "transactions")
	for _, f := range files {
		rel, _ := filepath.Rel(dir, f)
		fmt.Println(filepath.ToSlash(rel))
	}
	rows, _ := offline.ReadStream(dir, "transactions")
	for _, r := range rows {
		fmt.Println(r["user_id"], r["amount"], r["_event_id"], r["_offset"])
	}
	fmt.Println("resume at", sink.Resume("transactions"))
	// Output:
	// streams/transactions/date=2026-05-01/part-p0-40-42.parquet
	// u1 20 evt-1 41
	// u2 10 evt-0 40
	// u2 30 evt-2 42
	// resume at map[0:44]
}
