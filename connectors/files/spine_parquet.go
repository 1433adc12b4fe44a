package files

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"os"
	"slices"
	"strconv"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/sluicehq/sluice/schemas"
)

// parquetBatch is how many rows a Parquet spine decodes at a time.
const parquetBatch = 256

// parquetSpine reads a Parquet spine one row group at a time.
type parquetSpine struct {
	path     string
	file     *os.File
	groups   []parquet.RowGroup
	next     int          // the next row group to open
	rows     parquet.Rows // the open row group, or nil
	finished bool         // rows has no more to read
	buf      []parquet.Row
	n, i     int   // buf[:n] holds rows, buf[i] is the next one
	row      int64 // the 1-based number of the last row handed out
	columns  []Column
	decoders []decoder
	layout   layout
	closed   bool
}

func openParquet(path, timestampColumn string, keyTypes map[string]schemas.Type) (_ Spine, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("spine: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("spine: %w", err)
	}
	pf, err := parquet.OpenFile(f, st.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return nil, fmt.Errorf("spine %s: %w (the name ends in .parquet but the file is not Parquet)", path, err)
	}
	fields := pf.Schema().Fields()
	names := make([]string, len(fields))
	for i, field := range fields {
		names[i] = field.Name()
	}
	l, err := findColumns(names, timestampColumn, keyTypes)
	if err != nil {
		return nil, fmt.Errorf("spine %s: %w", path, err)
	}
	s := &parquetSpine{
		path:     path,
		file:     f,
		groups:   pf.RowGroups(),
		buf:      make([]parquet.Row, parquetBatch),
		columns:  make([]Column, len(fields)),
		decoders: make([]decoder, len(fields)),
		layout:   l,
	}
	for i, field := range fields {
		if err := s.describe(i, field); err != nil {
			return nil, fmt.Errorf("spine %s: column %q: %w", path, field.Name(), err)
		}
	}
	return s, nil
}

// describe sets column i and its decoder from the file's field and the
// column's role.
func (s *parquetSpine) describe(i int, field parquet.Field) error {
	if !field.Leaf() || field.Repeated() {
		return errors.New("is nested or repeated; a spine's columns hold one string, number, boolean or timestamp each")
	}
	t, d, err := decoderOf(field.Type())
	if err != nil {
		return err
	}
	col := Column{Name: field.Name(), Type: t, Nullable: field.Optional()}
	if i == s.layout.timeIndex {
		if d, err = timeDecoder(t, d, field.Type()); err != nil {
			return err
		}
		col.Type, col.Nullable = schemas.Timestamp, false
	} else if key, ok := s.layout.keys[i]; ok {
		if d, err = keyDecoder(key, t, d); err != nil {
			return err
		}
		col.Type, col.Nullable = key, false
	}
	s.columns[i], s.decoders[i] = col, d
	return nil
}

// timeDecoder adapts the decoder of the timestamp column, of file type t.
func timeDecoder(t schemas.Type, d decoder, pt parquet.Type) (decoder, error) {
	switch {
	case t == schemas.Timestamp:
		return d, nil
	case t == schemas.String:
		d.convert = convertParseTime
		return d, nil
	case d.kind == decodeInt64:
		return d, nil // µs since the Unix epoch
	}
	return d, fmt.Errorf("the timestamp column has type %v; make it a TIMESTAMP, an INT64 of µs since the Unix epoch or an RFC 3339 string",
		pt)
}

// keyDecoder adapts the decoder of an entity key column, of file type t,
// to the key's type.
func keyDecoder(key, t schemas.Type, d decoder) (decoder, error) {
	switch {
	case key == t:
		return d, nil
	case key == schemas.String && t == schemas.Int64:
		d.convert = convertFormatInt
		return d, nil
	case key == schemas.Int64 && t == schemas.String:
		d.convert = convertParseInt
		return d, nil
	}
	return d, fmt.Errorf("the entity key is %v but the column holds %v; write the key as a string or an integer", key, t)
}

// decodeKind is how a column's physical values are read.
type decodeKind uint8

const (
	decodeNull    decodeKind = iota // the column holds only nulls
	decodeString                    // byte arrays
	decodeUUID                      // 16-byte UUIDs, as text
	decodeInt32                     // INT32, signed
	decodeInt64                     // INT64, signed
	decodeUint32                    // unsigned INT32
	decodeUint64                    // unsigned INT64
	decodeFloat                     // FLOAT
	decodeDouble                    // DOUBLE
	decodeBool                      // BOOLEAN
	decodeDecimal                   // DECIMAL of any physical type
	decodeMillis                    // TIMESTAMP(MILLIS)
	decodeMicros                    // TIMESTAMP(MICROS)
	decodeNanos                     // TIMESTAMP(NANOS)
	decodeDate                      // DATE, days since the Unix epoch
	decodeInt96                     // legacy INT96 timestamps
)

// convert is what a key or timestamp column does to a decoded value.
type convert uint8

const (
	convertNone      convert = iota
	convertFormatInt         // int64 to its decimal string
	convertParseInt          // string to int64
	convertParseTime         // RFC 3339 string to µs
)

// decoder reads one column's values.
type decoder struct {
	kind    decodeKind
	scale   int32 // of a decimal
	convert convert
}

// decoderOf maps a Parquet column type to a spine type and its decoder.
func decoderOf(t parquet.Type) (schemas.Type, decoder, error) {
	if lt := t.LogicalType(); lt != nil && lt.Value != nil {
		switch x := lt.Value.(type) {
		case *format.StringType, *format.EnumType, *format.JsonType:
			return schemas.String, decoder{kind: decodeString}, nil
		case *format.UUIDType:
			return schemas.String, decoder{kind: decodeUUID}, nil
		case *format.IntType:
			switch {
			case x.IsSigned && x.BitWidth == 64:
				return schemas.Int64, decoder{kind: decodeInt64}, nil
			case x.IsSigned:
				return schemas.Int64, decoder{kind: decodeInt32}, nil
			case x.BitWidth == 64:
				return schemas.Int64, decoder{kind: decodeUint64}, nil
			}
			return schemas.Int64, decoder{kind: decodeUint32}, nil
		case *format.DecimalType:
			return schemas.Float64, decoder{kind: decodeDecimal, scale: x.Scale}, nil
		case *format.TimestampType:
			switch x.Unit.Value.(type) {
			case *format.MilliSeconds:
				return schemas.Timestamp, decoder{kind: decodeMillis}, nil
			case *format.NanoSeconds:
				return schemas.Timestamp, decoder{kind: decodeNanos}, nil
			}
			return schemas.Timestamp, decoder{kind: decodeMicros}, nil
		case *format.DateType:
			return schemas.Timestamp, decoder{kind: decodeDate}, nil
		case *format.NullType:
			return schemas.String, decoder{kind: decodeNull}, nil
		}
		return 0, decoder{}, unsupported(t)
	}
	switch t.Kind() {
	case parquet.ByteArray:
		return schemas.String, decoder{kind: decodeString}, nil
	case parquet.Int32:
		return schemas.Int64, decoder{kind: decodeInt32}, nil
	case parquet.Int64:
		return schemas.Int64, decoder{kind: decodeInt64}, nil
	case parquet.Float:
		return schemas.Float64, decoder{kind: decodeFloat}, nil
	case parquet.Double:
		return schemas.Float64, decoder{kind: decodeDouble}, nil
	case parquet.Boolean:
		return schemas.Bool, decoder{kind: decodeBool}, nil
	case parquet.Int96:
		return schemas.Timestamp, decoder{kind: decodeInt96}, nil
	}
	return 0, decoder{}, unsupported(t)
}

func unsupported(t parquet.Type) error {
	return fmt.Errorf("type %v is not supported; write it as a string, integer, floating-point, boolean or timestamp column", t)
}

// julianEpoch is the Julian day number of 1970-01-01, for INT96 timestamps.
const julianEpoch = 2_440_588

const microsPerDay = 86_400_000_000

// decode returns the Go value of v, nil for null.
func (d *decoder) decode(v parquet.Value) (any, error) {
	if v.IsNull() {
		return nil, nil
	}
	var out any
	switch d.kind {
	case decodeNull:
		return nil, nil
	case decodeString:
		out = string(v.ByteArray())
	case decodeUUID:
		out = formatUUID(v.ByteArray())
	case decodeInt32:
		out = int64(v.Int32())
	case decodeInt64:
		out = v.Int64()
	case decodeUint32:
		out = int64(v.Uint32())
	case decodeUint64:
		u := v.Uint64()
		if u > math.MaxInt64 {
			return nil, fmt.Errorf("value %d does not fit int64; keep unsigned values below 2^63", u)
		}
		out = int64(u)
	case decodeFloat:
		out = float64(v.Float())
	case decodeDouble:
		out = v.Double()
	case decodeBool:
		out = v.Boolean()
	case decodeDecimal:
		out = decimalValue(v, d.scale)
	case decodeMillis:
		out = v.Int64() * 1000
	case decodeMicros:
		out = v.Int64()
	case decodeNanos:
		out = floorDiv(v.Int64(), 1000)
	case decodeDate:
		out = int64(v.Int32()) * microsPerDay
	case decodeInt96:
		i := v.Int96()
		nanos := int64(uint64(i[1])<<32 | uint64(i[0]))
		out = (int64(i[2])-julianEpoch)*microsPerDay + floorDiv(nanos, 1000)
	}
	return d.converted(out)
}

// converted applies the decoder's conversion to a decoded value.
func (d *decoder) converted(v any) (any, error) {
	switch d.convert {
	case convertFormatInt:
		return strconv.FormatInt(v.(int64), 10), nil
	case convertParseInt:
		return parseIntKey(v.(string))
	case convertParseTime:
		return parseTimestamp(v.(string))
	}
	return v, nil
}

// decimalValue returns a DECIMAL value as a float64.
func decimalValue(v parquet.Value, scale int32) float64 {
	var unscaled *big.Int
	switch v.Kind() {
	case parquet.Int32:
		unscaled = big.NewInt(int64(v.Int32()))
	case parquet.Int64:
		unscaled = big.NewInt(v.Int64())
	default: // a big-endian two's complement integer
		b := v.ByteArray()
		unscaled = new(big.Int).SetBytes(b)
		if len(b) > 0 && b[0]&0x80 != 0 {
			unscaled.Sub(unscaled, new(big.Int).Lsh(big.NewInt(1), uint(len(b))*8))
		}
	}
	f, _ := new(big.Float).SetInt(unscaled).Float64()
	return f / math.Pow10(int(scale))
}

// formatUUID writes a 16-byte UUID in its canonical text form.
func formatUUID(b []byte) string {
	if len(b) != 16 {
		return hex.EncodeToString(b)
	}
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

func (s *parquetSpine) Columns() []Column { return slices.Clone(s.columns) }

func (s *parquetSpine) TimeIndex() int { return s.layout.timeIndex }

func (s *parquetSpine) Rows() int64 {
	var n int64
	for _, g := range s.groups {
		n += g.NumRows()
	}
	return n
}

func (s *parquetSpine) Next(row []any) error {
	if s.closed {
		return ErrClosed
	}
	if err := checkRow(row, len(s.columns)); err != nil {
		return fmt.Errorf("spine %s: %w", s.path, err)
	}
	for s.i >= s.n {
		if err := s.fill(); err != nil {
			return err
		}
	}
	r := s.buf[s.i]
	s.i++
	s.row++
	if len(r) != len(s.columns) {
		return fmt.Errorf("spine %s: row %d has %d values for %d columns", s.path, s.row, len(r), len(s.columns))
	}
	for c := range s.decoders {
		v, err := s.decoders[c].decode(r[c])
		if err == nil && v == nil && !s.columns[c].Nullable {
			err = s.nullError(c)
		}
		if err != nil {
			return fmt.Errorf("spine %s: row %d, column %q: %w", s.path, s.row, s.columns[c].Name, err)
		}
		row[c] = v
	}
	return nil
}

// nullError says that a key or timestamp column holds a null.
func (s *parquetSpine) nullError(c int) error {
	if c == s.layout.timeIndex {
		return errors.New("the timestamp is null; every row needs one")
	}
	return errors.New("the entity key is null; every row needs its entity key")
}

// fill reads the next batch of rows into buf, moving on to the next row
// group when one is done; it returns io.EOF after the last.
func (s *parquetSpine) fill() error {
	if s.rows != nil && s.finished {
		// Closed only now: the rows of the last batch may point into the
		// row group's buffers.
		s.rows.Close()
		s.rows = nil
	}
	if s.rows == nil {
		if s.next >= len(s.groups) {
			s.n, s.i = 0, 0
			return io.EOF
		}
		s.rows = s.groups[s.next].Rows()
		s.next++
		s.finished = false
	}
	n, err := s.rows.ReadRows(s.buf)
	s.n, s.i = n, 0
	switch {
	case errors.Is(err, io.EOF):
		s.finished = true
	case err != nil:
		return fmt.Errorf("spine %s: read row group %d: %w", s.path, s.next, err)
	}
	return nil
}

func (s *parquetSpine) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	var rowsErr error
	if s.rows != nil {
		rowsErr = s.rows.Close()
		s.rows = nil
	}
	if err := errors.Join(rowsErr, s.file.Close()); err != nil {
		return fmt.Errorf("spine %s: close: %w", s.path, err)
	}
	return nil
}
