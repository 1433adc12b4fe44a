package schemas

import (
	"fmt"
	"slices"
	"unsafe"

	"github.com/parquet-go/parquet-go"
)

// The columns Sluice stores after a stream's fields, in the offline store's
// Parquet files and in its ClickHouse tables, in this order.
const (
	EventIDColumn     = EventIDField    // string, the event's id
	EventTimeColumn   = "_event_time"   // timestamp, the event time
	ArrivalTimeColumn = "_arrival_time" // timestamp, the Kafka record timestamp
	PartitionColumn   = "_partition"    // int32, the Kafka partition
	OffsetColumn      = "_offset"       // int64, the Kafka offset
)

// MetaColumns returns the names of the columns Sluice adds after a stream's
// fields, in column order.
func MetaColumns() []string {
	return []string{EventIDColumn, EventTimeColumn, ArrivalTimeColumn, PartitionColumn, OffsetColumn}
}

// ParquetMeta is what the offline store keeps about an event besides its
// field values.
type ParquetMeta struct {
	EventID     string
	EventTime   int64 // µs since the Unix epoch, UTC
	ArrivalTime int64 // µs since the Unix epoch, UTC
	Partition   int32
	Offset      int64
}

// ParquetSchema returns the Parquet schema of stream s's files, named after
// the stream: its fields in schema order (string as a UTF-8 BYTE_ARRAY, int64
// as INT64, float64 as DOUBLE, bool as BOOLEAN, timestamp as INT64
// TIMESTAMP(MICROS, UTC); optional when nullable, else required), then the
// required meta columns of MetaColumns.
//
// It panics if a field has a type this package does not define, which a
// validated schema never has.
func ParquetSchema(s *Schema) *parquet.Schema {
	group := parquet.Group{}
	order := make([]string, 0, len(s.Fields)+5)
	for _, f := range s.Fields {
		node := ParquetNode(f.Type)
		if f.Nullable {
			node = parquet.Optional(node)
		}
		group[f.Name] = node
		order = append(order, f.Name)
	}
	meta := []parquet.Node{
		ParquetNode(String),
		ParquetNode(Timestamp),
		ParquetNode(Timestamp),
		parquet.Leaf(parquet.Int32Type),
		ParquetNode(Int64),
	}
	for i, name := range MetaColumns() {
		group[name] = meta[i]
		order = append(order, name)
	}
	return parquet.NewSchema(s.Stream, OrderedGroup(group, order))
}

// ParquetNode returns the required Parquet leaf node of a field type. It
// panics on a type this package does not define.
func ParquetNode(t Type) parquet.Node {
	switch t {
	case String:
		return parquet.String()
	case Int64:
		return parquet.Leaf(parquet.Int64Type)
	case Float64:
		return parquet.Leaf(parquet.DoubleType)
	case Bool:
		return parquet.Leaf(parquet.BooleanType)
	case Timestamp:
		return parquet.Timestamp(parquet.Microsecond)
	}
	panic(fmt.Sprintf("schemas: no Parquet type for %v", t))
}

// AppendParquetRow appends to row one event in the columns of
// ParquetSchema(s): values holds one value per field of s in schema order, with
// the Go types of Event.Values, then come the meta columns from m.
func AppendParquetRow(row parquet.Row, s *Schema, values []any, m ParquetMeta) (parquet.Row, error) {
	if len(values) != len(s.Fields) {
		return row, &FieldError{Stream: s.Stream, Problem: fmt.Sprintf(
			"event has %d values for the %d fields of schema version %d", len(values), len(s.Fields), s.Version)}
	}
	for i, f := range s.Fields {
		v, err := ParquetValue(f, values[i])
		if err != nil {
			return row, &FieldError{Stream: s.Stream, Field: f.Name, Problem: err.Error()}
		}
		def := 0
		if f.Nullable && !v.IsNull() {
			def = 1
		}
		row = append(row, v.Level(0, def, i))
	}
	n := len(s.Fields)
	return append(row,
		stringValue(m.EventID).Level(0, 0, n),
		parquet.Int64Value(m.EventTime).Level(0, 0, n+1),
		parquet.Int64Value(m.ArrivalTime).Level(0, 0, n+2),
		parquet.Int32Value(m.Partition).Level(0, 0, n+3),
		parquet.Int64Value(m.Offset).Level(0, 0, n+4),
	), nil
}

// ParquetValue converts one field value to its Parquet value (levels
// unset); a nil value is null, which f must allow.
func ParquetValue(f Field, v any) (parquet.Value, error) {
	if v == nil {
		if !f.Nullable {
			return parquet.Value{}, fmt.Errorf("is null but the field is not nullable")
		}
		return parquet.NullValue(), nil
	}
	switch x := v.(type) {
	case string:
		if f.Type == String {
			return stringValue(x), nil
		}
	case int64:
		if f.Type == Int64 || f.Type == Timestamp {
			return parquet.Int64Value(x), nil
		}
	case float64:
		if f.Type == Float64 {
			return parquet.DoubleValue(x), nil
		}
	case bool:
		if f.Type == Bool {
			return parquet.BooleanValue(x), nil
		}
	}
	return parquet.Value{}, fmt.Errorf("value %v of Go type %T does not fit type %v", v, v, f.Type)
}

// stringValue returns a BYTE_ARRAY value that references the bytes of x
// without copying them; Parquet writers only read them.
func stringValue(x string) parquet.Value {
	return parquet.ByteArrayValue(unsafe.Slice(unsafe.StringData(x), len(x)))
}

// orderedGroup is a Parquet group whose fields keep the order of a schema;
// parquet.Group alone orders its fields by name.
type orderedGroup struct {
	parquet.Group
	fields []parquet.Field
}

// OrderedGroup returns g with its fields in the order of order (names);
// parquet.Group alone orders its fields by name.
func OrderedGroup(g parquet.Group, order []string) parquet.Node {
	rank := make(map[string]int, len(order))
	for i, name := range order {
		rank[name] = i
	}
	fields := slices.Clone(g.Fields())
	slices.SortStableFunc(fields, func(a, b parquet.Field) int {
		return rank[a.Name()] - rank[b.Name()]
	})
	return orderedGroup{Group: g, fields: fields}
}

func (g orderedGroup) Fields() []parquet.Field { return g.fields }

func (g orderedGroup) String() string { return parquet.NewSchema("", g).String() }
