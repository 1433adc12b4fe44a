package files

import (
	"compress/gzip"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/schemas"
)

// inferRows is how many data rows of a CSV spine infer the types of its
// label columns.
const inferRows = 1000

// cellParser turns one CSV cell into a value.
type cellParser func(cell string) (any, error)

// csvSpine reads a CSV spine. It holds the first rows, read to infer the
// label types, until Next hands them out; later rows are read one at a
// time.
type csvSpine struct {
	path    string
	file    *os.File
	gz      *gzip.Reader // nil unless the file is gzipped
	r       *csv.Reader
	columns []Column
	layout  layout
	cells   []cellParser // one per column
	pending [][]string   // rows read ahead, in order
	lines   []int        // the line each pending row starts on
	done    bool         // the reader has reached the end of the file
	closed  bool
}

func openCSV(path string, gzipped bool, timestampColumn string, keyTypes map[string]schemas.Type) (_ Spine, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("spine: %w", err)
	}
	s := &csvSpine{path: path, file: f}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	var in io.Reader = f
	if gzipped {
		if s.gz, err = gzip.NewReader(f); err != nil {
			return nil, fmt.Errorf("spine %s: %w (the name ends in .gz but the file is not gzipped)", path, err)
		}
		in = s.gz
	}
	s.r = csv.NewReader(in)
	s.r.ReuseRecord = true
	header, err := s.r.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("spine %s: the file is empty; a CSV spine starts with a header row naming its columns", path)
	}
	if err != nil {
		return nil, s.readError(err)
	}
	header = slices.Clone(header)
	header[0] = strings.TrimPrefix(header[0], "\ufeff") // a byte order mark, as spreadsheets write
	if s.layout, err = findColumns(header, timestampColumn, keyTypes); err != nil {
		return nil, fmt.Errorf("spine %s: %w", path, err)
	}
	if err := s.readAhead(); err != nil {
		return nil, err
	}
	s.describe(header)
	return s, nil
}

// readAhead reads the rows that infer the label types, and one more to
// learn whether the file holds more than those.
func (s *csvSpine) readAhead() error {
	for len(s.pending) <= inferRows {
		rec, err := s.r.Read()
		if errors.Is(err, io.EOF) {
			s.done = true
			return nil
		}
		if err != nil {
			return s.readError(err)
		}
		line, _ := s.r.FieldPos(0)
		s.pending = append(s.pending, slices.Clone(rec))
		s.lines = append(s.lines, line)
	}
	return nil
}

// describe sets the columns and their cell parsers: the timestamp and keys
// as the caller said, the labels as the rows read ahead show.
func (s *csvSpine) describe(header []string) {
	window := s.pending[:min(len(s.pending), inferRows)]
	whole := len(s.pending) <= inferRows // the window is the whole file
	s.columns = make([]Column, len(header))
	s.cells = make([]cellParser, len(header))
	for i, name := range header {
		if i == s.layout.timeIndex {
			s.columns[i] = Column{Name: name, Type: schemas.Timestamp}
			s.cells[i] = timeCell
			continue
		}
		if t, ok := s.layout.keys[i]; ok {
			s.columns[i] = Column{Name: name, Type: t}
			s.cells[i] = keyCell(t)
			continue
		}
		t, sawEmpty := inferLabel(window, i)
		s.columns[i] = Column{Name: name, Type: t, Nullable: sawEmpty || !whole}
		s.cells[i] = labelCell(t)
	}
}

// inferLabel returns the type of label column c in rows, and whether one
// of its cells is empty.
func inferLabel(rows [][]string, c int) (t schemas.Type, sawEmpty bool) {
	isInt, isFloat, isBool, sawValue := true, true, true, false
	for _, r := range rows {
		cell := r[c]
		if cell == "" {
			sawEmpty = true
			continue
		}
		sawValue = true
		if isInt {
			_, err := strconv.ParseInt(cell, 10, 64)
			isInt = err == nil
		}
		if isFloat && !isInt {
			_, err := strconv.ParseFloat(cell, 64)
			isFloat = err == nil
		}
		if isBool {
			_, isBool = parseBool(cell)
		}
	}
	switch {
	case !sawValue:
		return schemas.String, sawEmpty
	case isInt:
		return schemas.Int64, sawEmpty
	case isFloat:
		return schemas.Float64, sawEmpty
	case isBool:
		return schemas.Bool, sawEmpty
	}
	return schemas.String, sawEmpty
}

// parseBool parses true or false in any case.
func parseBool(cell string) (v, ok bool) {
	switch {
	case strings.EqualFold(cell, "true"):
		return true, true
	case strings.EqualFold(cell, "false"):
		return false, true
	}
	return false, false
}

func timeCell(cell string) (any, error) {
	if cell == "" {
		return nil, fmt.Errorf("timestamp is empty; every row needs one (%s)", timestampExample)
	}
	v, err := parseTimestamp(cell)
	if err != nil {
		return nil, err
	}
	return v, nil
}

var errEmptyKey = errors.New("entity key is empty; every row needs its entity key")

func keyCell(t schemas.Type) cellParser {
	if t == schemas.Int64 {
		return func(cell string) (any, error) {
			if cell == "" {
				return nil, errEmptyKey
			}
			v, err := parseIntKey(cell)
			if err != nil {
				return nil, err
			}
			return v, nil
		}
	}
	return func(cell string) (any, error) {
		if cell == "" {
			return nil, errEmptyKey
		}
		return cell, nil
	}
}

func labelCell(t schemas.Type) cellParser {
	return func(cell string) (any, error) {
		if cell == "" {
			return nil, nil
		}
		switch t {
		case schemas.Int64:
			if v, err := strconv.ParseInt(cell, 10, 64); err == nil {
				return v, nil
			}
		case schemas.Float64:
			if v, err := strconv.ParseFloat(cell, 64); err == nil {
				return v, nil
			}
		case schemas.Bool:
			if v, ok := parseBool(cell); ok {
				return v, nil
			}
		default:
			return cell, nil
		}
		return nil, labelError(cell, t)
	}
}

// labelError says that a label value does not parse as its column's type.
func labelError(cell string, t schemas.Type) error {
	fix := "correct the value, or leave the cell empty for null"
	if _, err := strconv.ParseFloat(cell, 64); err == nil && t == schemas.Int64 {
		fix = fmt.Sprintf("if the column holds fractions, write a value within the first %d rows with a decimal point (1.0) so that it reads as float64", inferRows)
	}
	return fmt.Errorf("value %q does not parse as %v, the type the first %d rows gave the column; %s", cell, t, inferRows, fix)
}

func (s *csvSpine) Columns() []Column { return slices.Clone(s.columns) }

func (s *csvSpine) TimeIndex() int { return s.layout.timeIndex }

func (s *csvSpine) Rows() int64 { return -1 }

func (s *csvSpine) Next(row []any) error {
	if s.closed {
		return ErrClosed
	}
	if err := checkRow(row, len(s.columns)); err != nil {
		return fmt.Errorf("spine %s: %w", s.path, err)
	}
	var rec []string
	var line int
	switch {
	case len(s.pending) > 0:
		rec, line = s.pending[0], s.lines[0]
		s.pending, s.lines = s.pending[1:], s.lines[1:]
		if len(s.pending) == 0 {
			s.pending, s.lines = nil, nil
		}
	case s.done:
		return io.EOF
	default:
		var err error
		rec, err = s.r.Read()
		if errors.Is(err, io.EOF) {
			s.done = true
			return io.EOF
		}
		if err != nil {
			return s.readError(err)
		}
		line, _ = s.r.FieldPos(0)
	}
	for i, cell := range rec {
		v, err := s.cells[i](cell)
		if err != nil {
			return fmt.Errorf("spine %s: line %d, column %q: %w", s.path, line, s.columns[i].Name, err)
		}
		row[i] = v
	}
	return nil
}

// readError wraps an error of the CSV reader, which names the line, with
// the file and a fix.
func (s *csvSpine) readError(err error) error {
	fix := ""
	switch {
	case errors.Is(err, csv.ErrFieldCount):
		fix = " (give every row one value per header column)"
	case errors.Is(err, csv.ErrQuote), errors.Is(err, csv.ErrBareQuote):
		fix = ` (quote a value that holds quotes, commas or line breaks, and double the quotes inside it: "say ""hi"", then go")`
	}
	return fmt.Errorf("spine %s: %w%s", s.path, err, fix)
}

func (s *csvSpine) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.pending, s.lines = nil, nil
	var gzErr error
	if s.gz != nil {
		gzErr = s.gz.Close()
	}
	if err := errors.Join(gzErr, s.file.Close()); err != nil {
		return fmt.Errorf("spine %s: close: %w", s.path, err)
	}
	return nil
}
