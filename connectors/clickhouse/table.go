package clickhouse

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/schemas"
)

// Types of the meta columns and of timestamps. Servers before 20.5 lack
// DateTime64 and toUnixTimestamp64Micro, so timestamps there are Int64
// microseconds since the Unix epoch, UTC, the same number the Parquet files
// hold.
const (
	microsType     = "Int64"
	dateTime64Type = "DateTime64(6, 'UTC')"
)

// table is what the client knows of a stream's table.
type table struct {
	stream  string
	columns map[string]string // name to type, as ClickHouse reports it
	order   []string          // column names in table order
	// micros says timestamps are Int64 microseconds: the table was created
	// on a server before 20.5.
	micros bool
}

// name returns the table's quoted, qualified name.
func (c *Client) tableName(stream string) string { return quote(c.database) + "." + quote(stream) }

func (c *Client) timeType(micros bool) string {
	if micros {
		return microsType
	}
	return dateTime64Type
}

func (c *Client) boolType() string {
	if c.version.Bool() {
		return "Bool"
	}
	return "UInt8"
}

// fieldType returns the column type of a schema field in a table whose
// timestamps are micros or DateTime64.
func (c *Client) fieldType(f schemas.Field, micros bool) string {
	var t string
	switch f.Type {
	case schemas.String:
		t = "String"
	case schemas.Int64:
		t = "Int64"
	case schemas.Float64:
		t = "Float64"
	case schemas.Bool:
		t = c.boolType()
	case schemas.Timestamp:
		t = c.timeType(micros)
	default:
		panic(fmt.Sprintf("clickhouse: field %q has unknown type %v", f.Name, f.Type))
	}
	if f.Nullable {
		t = "Nullable(" + t + ")"
	}
	return t
}

// columnDef returns a field's column definition, with its default.
func (c *Client) columnDef(f schemas.Field, micros bool) string {
	def := quote(f.Name) + " " + c.fieldType(f, micros)
	if f.Default != nil {
		def += " DEFAULT " + c.literal(f, f.Default, micros)
	}
	return def
}

// literal renders a field's default value in ClickHouse SQL.
func (c *Client) literal(f schemas.Field, v any, micros bool) string {
	switch x := v.(type) {
	case string:
		return quoteString(x)
	case float64:
		switch {
		case math.IsNaN(x):
			return "nan"
		case math.IsInf(x, 1):
			return "inf"
		case math.IsInf(x, -1):
			return "-inf"
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		switch {
		case c.boolType() == "Bool":
			return strconv.FormatBool(x)
		case x:
			return "1"
		}
		return "0"
	case int64:
		if f.Type == schemas.Timestamp && !micros {
			return fmt.Sprintf("fromUnixTimestamp64Micro(toInt64(%d), 'UTC')", x)
		}
		if f.Type == schemas.Float64 {
			return strconv.FormatFloat(float64(x), 'g', -1, 64)
		}
		return strconv.FormatInt(x, 10)
	case time.Time:
		return c.literal(f, x.UnixMicro(), micros)
	}
	panic(fmt.Sprintf("clickhouse: field %q: default %v (%T) has no literal", f.Name, v, v))
}

// microsExpr returns an expression of a timestamp column's microseconds.
func microsExpr(column string, micros bool) string {
	if micros {
		return quote(column)
	}
	return "toUnixTimestamp64Micro(" + quote(column) + ")"
}

// dayExpr returns an expression of the UTC day (days since the Unix epoch,
// rounded down) of a timestamp column: the day of the offline store's date=
// directory that holds the row.
func dayExpr(column string, micros bool) string {
	us := microsExpr(column, micros)
	return fmt.Sprintf("(intDiv(%[1]s, toInt64(86400000000)) - (%[1]s %% toInt64(86400000000) < 0))", us)
}

// createSQL returns the CREATE TABLE statement of a stream's table.
//
// The table is a ReplacingMergeTree ordered by (entity key, _event_time,
// _event_id) and partitioned by month. A UTC day never spans two partitions,
// so a block of rows of one day is written as one part: atomically.
func (c *Client) createSQL(s *schemas.Schema, micros bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s (\n", c.tableName(s.Stream))
	for _, f := range s.Fields {
		fmt.Fprintf(&b, "  %s,\n", c.columnDef(f, micros))
	}
	ts := c.timeType(micros)
	fmt.Fprintf(&b, "  %s String,\n  %s %s,\n  %s %s,\n  %s Int32,\n  %s Int64\n)\n",
		quote(schemas.EventIDColumn), quote(schemas.EventTimeColumn), ts, quote(schemas.ArrivalTimeColumn), ts,
		quote(schemas.PartitionColumn), quote(schemas.OffsetColumn))
	b.WriteString("ENGINE = ReplacingMergeTree\n")
	if micros {
		fmt.Fprintf(&b, "PARTITION BY toYYYYMM(toDate(%s))\n", dayExpr(schemas.EventTimeColumn, true))
	} else {
		fmt.Fprintf(&b, "PARTITION BY toYYYYMM(%s)\n", quote(schemas.EventTimeColumn))
	}
	order := make([]string, 0, len(s.KeyFields)+2)
	for _, k := range s.KeyFields {
		order = append(order, quote(k))
	}
	order = append(order, quote(schemas.EventTimeColumn), quote(schemas.EventIDColumn))
	fmt.Fprintf(&b, "ORDER BY (%s)", strings.Join(order, ", "))
	return b.String()
}

// describe reads a stream's table from system.columns; nil when it does not
// exist.
func (c *Client) describe(ctx context.Context, stream string) (*table, error) {
	rows, err := c.conn.Query(ctx,
		"SELECT name, type FROM system.columns WHERE database = "+quoteString(c.database)+
			" AND table = "+quoteString(stream))
	if err != nil {
		return nil, c.wrap(ctx, "describe table "+stream, err)
	}
	defer rows.Close()
	t := &table{stream: stream, columns: map[string]string{}}
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			return nil, fmt.Errorf("describe table %s: %w", stream, err)
		}
		t.columns[name] = typ
		t.order = append(t.order, name)
	}
	if err := rows.Err(); err != nil {
		return nil, c.wrap(ctx, "describe table "+stream, err)
	}
	if len(t.order) == 0 {
		return nil, nil
	}
	for _, m := range schemas.MetaColumns() {
		if _, ok := t.columns[m]; !ok {
			return nil, fmt.Errorf("table %s.%s exists but has no column %s, so Sluice did not create it; "+
				"drop or rename it, or set clickhouse.database to another database", c.database, stream, m)
		}
	}
	t.micros = t.columns[schemas.EventTimeColumn] == microsType
	return t, nil
}

// EnsureTable creates the table of a stream's schema if it is missing, and
// brings an existing one up to the schema: it adds the columns of new fields
// (with their defaults), widens Int64 columns to Float64, makes columns
// Nullable when their fields became nullable or were dropped.
func (c *Client) EnsureTable(ctx context.Context, s *schemas.Schema) error {
	t, err := c.describe(ctx, s.Stream)
	if err != nil {
		return err
	}
	if t == nil {
		micros := !c.version.DateTime64()
		if err := c.exec(ctx, c.createSQL(s, micros)); err != nil {
			return fmt.Errorf("create table %s.%s: %w", c.database, s.Stream, err)
		}
		c.log.Info("created table", "table", c.database+"."+s.Stream, "schema_version", s.Version)
		if t, err = c.describe(ctx, s.Stream); err != nil {
			return err
		}
		if t == nil {
			return fmt.Errorf("create table %s.%s: it does not exist after CREATE TABLE", c.database, s.Stream)
		}
	} else {
		changed, err := c.evolve(ctx, t, s)
		if err != nil {
			return err
		}
		if changed {
			if t, err = c.describe(ctx, s.Stream); err != nil {
				return err
			}
		}
	}
	c.mu.Lock()
	c.tables[s.Stream] = t
	c.mu.Unlock()
	return nil
}

// evolve alters an existing table to fit schema s; it reports whether it
// changed anything.
func (c *Client) evolve(ctx context.Context, t *table, s *schemas.Schema) (bool, error) {
	var alters []string
	prev := ""
	for _, f := range s.Fields {
		have, ok := t.columns[f.Name]
		switch {
		case !ok:
			a := "ADD COLUMN " + c.columnDef(f, t.micros)
			if prev != "" {
				a += " AFTER " + quote(prev)
			}
			alters = append(alters, a)
		case !fits(f, have):
			alters = append(alters, "MODIFY COLUMN "+quote(f.Name)+" "+c.fieldType(f, t.micros))
		}
		prev = f.Name
	}
	for _, name := range t.order {
		if s.Index(name) < 0 && !isMeta(name) && !strings.HasPrefix(t.columns[name], "Nullable(") {
			// A dropped field: rows from now on have no value for it.
			alters = append(alters, "MODIFY COLUMN "+quote(name)+" Nullable("+t.columns[name]+")")
		}
	}
	for _, a := range alters {
		if err := c.exec(ctx, "ALTER TABLE "+c.tableName(s.Stream)+" "+a); err != nil {
			return false, fmt.Errorf("table %s.%s: schema version %d: %s: %w", c.database, s.Stream, s.Version, a, err)
		}
		c.log.Info("altered table", "table", c.database+"."+s.Stream, "schema_version", s.Version, "change", a)
	}
	return len(alters) > 0, nil
}

// fits reports whether an existing column of type have holds field f as is.
func fits(f schemas.Field, have string) bool {
	base, nullable := strings.CutPrefix(have, "Nullable(")
	if nullable {
		base = strings.TrimSuffix(base, ")")
	}
	if f.Nullable && !nullable {
		return false
	}
	base = strings.ReplaceAll(base, " ", "")
	switch f.Type {
	case schemas.String:
		return base == "String"
	case schemas.Int64:
		return base == "Int64"
	case schemas.Float64:
		return base == "Float64"
	case schemas.Bool:
		return base == "UInt8" || base == "Bool"
	case schemas.Timestamp:
		return base == microsType || base == strings.ReplaceAll(dateTime64Type, " ", "")
	}
	return false
}

func isMeta(name string) bool {
	for _, m := range schemas.MetaColumns() {
		if m == name {
			return true
		}
	}
	return false
}

// table returns what the client knows of a stream's table, reading it from
// ClickHouse when it knows nothing yet.
func (c *Client) table(ctx context.Context, stream string) (*table, error) {
	c.mu.Lock()
	t := c.tables[stream]
	c.mu.Unlock()
	if t != nil {
		return t, nil
	}
	t, err := c.describe(ctx, stream)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, fmt.Errorf("table %s.%s does not exist (EnsureTable creates it)", c.database, stream)
	}
	c.mu.Lock()
	c.tables[stream] = t
	c.mu.Unlock()
	return t, nil
}
