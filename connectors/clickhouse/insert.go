package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Insert writes rows into a stream's table in one INSERT of one block. A row
// maps column names to values as offline.ReadFile returns them (string,
// int32, int64, float64, bool, time.Time; nil for null). Every row must have
// the same columns, each a column of the table (EnsureTable adds the columns
// of a schema); columns the rows lack take their defaults.
//
// ClickHouse writes a block whose rows fall into one partition of the table
// (one month of _event_time) as one part, atomically: after a crash, either
// every row of the block is in the table or none is.
func (c *Client) Insert(ctx context.Context, stream string, rows []map[string]any) error {
	if len(rows) == 0 {
		return nil
	}
	t, err := c.table(ctx, stream)
	if err != nil {
		return err
	}
	var names []string
	var cols []column
	for _, name := range t.order {
		if _, ok := rows[0][name]; !ok {
			continue
		}
		col, err := newColumn(t.columns[name], len(rows))
		if err != nil {
			return fmt.Errorf("insert into %s.%s: column %s: %w", c.database, stream, name, err)
		}
		names, cols = append(names, name), append(cols, col)
	}
	if len(names) != len(rows[0]) {
		for name := range rows[0] {
			if _, ok := t.columns[name]; !ok {
				return fmt.Errorf("insert into %s.%s: the table has no column %s (EnsureTable adds it)", c.database, stream, name)
			}
		}
	}
	for i, r := range rows {
		if len(r) != len(names) {
			return fmt.Errorf("insert into %s.%s: row %d has %d columns, row 0 has %d", c.database, stream, i, len(r), len(names))
		}
		for j, name := range names {
			v, ok := r[name]
			if !ok {
				return fmt.Errorf("insert into %s.%s: row %d has no column %s", c.database, stream, i, name)
			}
			if err := cols[j].add(v); err != nil {
				return fmt.Errorf("insert into %s.%s: row %d: column %s: %w", c.database, stream, i, name, err)
			}
		}
	}
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = quote(n)
	}
	batch, err := c.conn.PrepareBatch(ctx, "INSERT INTO "+c.tableName(stream)+" ("+strings.Join(quoted, ", ")+")")
	if err != nil {
		return c.wrap(ctx, "insert into "+c.database+"."+stream, err)
	}
	for i, col := range cols {
		if err := batch.Column(i).Append(col.values()); err != nil {
			batch.Abort()
			return fmt.Errorf("insert into %s.%s: column %s: %w", c.database, stream, names[i], err)
		}
	}
	if err := batch.Send(); err != nil {
		return c.wrap(ctx, "insert into "+c.database+"."+stream, err)
	}
	return nil
}

var errNull = errors.New("null in a column that is not Nullable")

// column gathers one column's values for a block.
type column interface {
	add(v any) error
	values() any
}

// typed is a column of Go type T; a Nullable one is a slice of pointers.
type typed[T any] struct {
	conv     func(any) (T, bool)
	nullable bool
	vals     []T
	ptrs     []*T
}

func (c *typed[T]) add(v any) error {
	if v == nil {
		if !c.nullable {
			return errNull
		}
		c.ptrs = append(c.ptrs, nil)
		return nil
	}
	x, ok := c.conv(v)
	if !ok {
		return fmt.Errorf("value %v (%T) does not fit", v, v)
	}
	if c.nullable {
		c.ptrs = append(c.ptrs, &x)
	} else {
		c.vals = append(c.vals, x)
	}
	return nil
}

func (c *typed[T]) values() any {
	if c.nullable {
		return c.ptrs
	}
	return c.vals
}

func newTyped[T any](nullable bool, n int, conv func(any) (T, bool)) column {
	c := &typed[T]{conv: conv, nullable: nullable}
	if nullable {
		c.ptrs = make([]*T, 0, n)
	} else {
		c.vals = make([]T, 0, n)
	}
	return c
}

// newColumn returns a column for a ClickHouse type Sluice's tables use.
func newColumn(typ string, n int) (column, error) {
	base, nullable := strings.CutPrefix(typ, "Nullable(")
	if nullable {
		base = strings.TrimSuffix(base, ")")
	}
	switch strings.ReplaceAll(base, " ", "") {
	case "String":
		return newTyped(nullable, n, toString), nil
	case "Int64":
		return newTyped(nullable, n, toInt64), nil
	case "Int32":
		return newTyped(nullable, n, toInt32), nil
	case "Float64":
		return newTyped(nullable, n, toFloat64), nil
	case "UInt8":
		return newTyped(nullable, n, toUInt8), nil
	case "Bool":
		return newTyped(nullable, n, toBool), nil
	case "DateTime64(6,'UTC')":
		return newTyped(nullable, n, toTime), nil
	}
	return nil, fmt.Errorf("type %s is not one Sluice writes", typ)
}

func toString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case []byte:
		return string(x), true
	}
	return "", false
}

// toInt64 also takes a timestamp, as microseconds: the Int64 timestamp
// columns of servers before 20.5.
func toInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int32:
		return int64(x), true
	case int:
		return int64(x), true
	case time.Time:
		return x.UnixMicro(), true
	}
	return 0, false
}

func toInt32(v any) (int32, bool) {
	switch x := v.(type) {
	case int32:
		return x, true
	case int64:
		return int32(x), int64(int32(x)) == x
	}
	return 0, false
}

// toFloat64 also takes an int64: a field widened from int64 to float64 has
// int64 values in older files.
func toFloat64(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int64:
		return float64(x), true
	}
	return 0, false
}

// toUInt8 takes a bool: the UInt8 boolean columns of servers before 21.12.
func toUInt8(v any) (uint8, bool) {
	switch x := v.(type) {
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	case uint8:
		return x, true
	}
	return 0, false
}

func toBool(v any) (bool, bool) {
	x, ok := v.(bool)
	return x, ok
}

func toTime(v any) (time.Time, bool) {
	switch x := v.(type) {
	case time.Time:
		return x.UTC(), true
	case int64:
		return time.UnixMicro(x).UTC(), true
	}
	return time.Time{}, false
}
