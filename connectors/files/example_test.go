package files_test

import (
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/sluicehq/sluice/connectors/files"
	"github.com/sluicehq/sluice/schemas"
)

func ExampleOpenSpine() {
	dir, err := os.MkdirTemp("", "spine")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "spine.csv")
	csv := "user_id,timestamp,is_fraud\n" +
		"u1,2026-03-01T12:00:00Z,false\n" +
		"u2,2026-03-01T14:30:00.5+02:00,true\n"
	if err := os.WriteFile(path, []byte(csv), 0o644); err != nil {
		log.Fatal(err)
	}

	sp, err := files.OpenSpine(path, "", map[string]schemas.Type{"user_id": schemas.String})
	if err != nil {
		log.Fatal(err)
	}
	defer sp.Close()
	for _, c := range sp.Columns() {
		fmt.Printf("%s %v\n", c.Name, c.Type)
	}
	row := make([]any, len(sp.Columns()))
	for {
		err := sp.Next(row)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		at := time.UnixMicro(row[sp.TimeIndex()].(int64)).UTC()
		fmt.Println(row[0], at.Format(time.RFC3339Nano), row[2])
	}
	// Output:
	// user_id string
	// timestamp timestamp
	// is_fraud bool
	// u1 2026-03-01T12:00:00Z false
	// u2 2026-03-01T12:30:00.5Z true
}
