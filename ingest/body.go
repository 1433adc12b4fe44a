package ingest

import (
	"bytes"
	"fmt"
	"mime"
)

// A request body holds events in one of three framings:
//
//   - NDJSON (Content-Type application/x-ndjson or a JSON Lines type): one
//     JSON value per line, blank lines skipped. A value may not span lines.
//   - a JSON array: the body's first non-space byte is '['.
//   - otherwise a sequence of JSON values separated by optional white space,
//     which covers one object (pretty-printed or not) and NDJSON sent with
//     another Content-Type.
//
// splitBody checks the JSON syntax of the whole body in one pass without
// decoding it, and returns each event's bytes as a sub-slice of the body, in
// body order. A syntax error anywhere fails the whole body, so a request is
// never half-produced because of a framing problem.

// maxDepth bounds the nesting of arrays and objects, as encoding/json does.
const maxDepth = 10000

// syntaxError reports where a body stops being valid JSON.
type syntaxError struct {
	Line   int // 1-based
	Column int // 1-based, in bytes
	Event  int // 0-based position of the event being read
	Msg    string
}

func (e *syntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at line %d, column %d (event %d): %s", e.Line, e.Column, e.Event, e.Msg)
}

// isNDJSON reports whether a Content-Type names newline-delimited JSON.
func isNDJSON(contentType string) bool {
	if contentType == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch mt {
	case "application/x-ndjson", "application/ndjson", "application/jsonl",
		"application/x-jsonlines", "application/jsonlines", "application/json-lines":
		return true
	}
	return false
}

// splitBody returns the events of body. ndjson selects line framing; see the
// comment above for the rules.
func splitBody(body []byte, ndjson bool) ([][]byte, error) {
	if ndjson {
		return splitLines(body)
	}
	s := scanner{data: body, eof: "the end of the body"}
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == '[' {
		return s.array()
	}
	return s.sequence()
}

// splitLines splits NDJSON: every non-blank line holds exactly one value.
func splitLines(body []byte) ([][]byte, error) {
	events := make([][]byte, 0, bytes.Count(body, []byte{'\n'})+1)
	lineNo := 0
	for off := 0; off < len(body); {
		lineNo++
		end := bytes.IndexByte(body[off:], '\n')
		if end < 0 {
			end = len(body)
		} else {
			end += off
		}
		s := scanner{data: body[:end], pos: off, eof: "the end of the line"}
		s.skipSpace()
		if s.pos < end {
			start := s.pos
			if err := s.value(0); err != nil {
				return nil, s.lineError(lineNo, off, len(events), err)
			}
			events = append(events, body[start:s.pos])
			s.skipSpace()
			if s.pos < end {
				return nil, s.lineError(lineNo, off, len(events)-1,
					fmt.Errorf("unexpected %s after the event (NDJSON holds one event per line)", s.describe()))
			}
		}
		off = end + 1
	}
	return events, nil
}

// scanner checks JSON syntax over data, starting at pos.
type scanner struct {
	data []byte
	pos  int
	eof  string // what the end of data is called in errors
}

// lineError builds a syntaxError for a scanner confined to one NDJSON line
// that starts at lineStart.
func (s *scanner) lineError(line, lineStart, event int, err error) error {
	return &syntaxError{Line: line, Column: s.pos - lineStart + 1, Event: event, Msg: err.Error()}
}

// bodyError builds a syntaxError for a scanner over the whole body.
func (s *scanner) bodyError(event int, err error) error {
	line := 1 + bytes.Count(s.data[:s.pos], []byte{'\n'})
	col := s.pos - bytes.LastIndexByte(s.data[:s.pos], '\n')
	return &syntaxError{Line: line, Column: col, Event: event, Msg: err.Error()}
}

// sequence reads white-space separated values until the end of data.
func (s *scanner) sequence() ([][]byte, error) {
	var events [][]byte
	for {
		s.skipSpace()
		if s.pos == len(s.data) {
			return events, nil
		}
		start := s.pos
		if err := s.value(0); err != nil {
			return nil, s.bodyError(len(events), err)
		}
		events = append(events, s.data[start:s.pos])
	}
}

// array reads one array whose elements are the events; only white space may
// follow it.
func (s *scanner) array() ([][]byte, error) {
	s.pos++ // '['
	var events [][]byte
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
	} else {
		for {
			s.skipSpace()
			start := s.pos
			if err := s.value(1); err != nil {
				return nil, s.bodyError(len(events), err)
			}
			events = append(events, s.data[start:s.pos])
			s.skipSpace()
			if s.pos == len(s.data) {
				return nil, s.bodyError(len(events), fmt.Errorf("the array is not closed: expected ',' or ']', got %s", s.describe()))
			}
			c := s.data[s.pos]
			s.pos++
			if c == ']' {
				break
			}
			if c != ',' {
				s.pos--
				return nil, s.bodyError(len(events), fmt.Errorf("expected ',' or ']' after an array element, got %s", s.describe()))
			}
		}
	}
	s.skipSpace()
	if s.pos < len(s.data) {
		return nil, s.bodyError(len(events), fmt.Errorf("unexpected %s after the array", s.describe()))
	}
	return events, nil
}

func (s *scanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// describe names the byte at pos for error messages.
func (s *scanner) describe() string {
	if s.pos >= len(s.data) {
		return s.eof
	}
	c := s.data[s.pos]
	if c < 0x20 || c >= 0x7f {
		return fmt.Sprintf("byte 0x%02x", c)
	}
	return fmt.Sprintf("%q", rune(c))
}

// value checks one JSON value starting at pos and leaves pos just after it.
func (s *scanner) value(depth int) error {
	if s.pos >= len(s.data) {
		return fmt.Errorf("expected a JSON value, got %s", s.describe())
	}
	switch c := s.data[s.pos]; {
	case c == '{':
		return s.object(depth + 1)
	case c == '[':
		return s.list(depth + 1)
	case c == '"':
		return s.str()
	case c == '-' || ('0' <= c && c <= '9'):
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return fmt.Errorf("expected a JSON value, got %s", s.describe())
}

func (s *scanner) object(depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("nested deeper than %d levels", maxDepth)
	}
	s.pos++ // '{'
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		return nil
	}
	for {
		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			return fmt.Errorf("expected a quoted field name, got %s", s.describe())
		}
		if err := s.str(); err != nil {
			return err
		}
		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return fmt.Errorf("expected ':' after a field name, got %s", s.describe())
		}
		s.pos++
		s.skipSpace()
		if err := s.value(depth); err != nil {
			return err
		}
		s.skipSpace()
		if s.pos >= len(s.data) {
			return fmt.Errorf("the object is not closed: expected ',' or '}', got %s", s.describe())
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return nil
		default:
			return fmt.Errorf("expected ',' or '}' after a field value, got %s", s.describe())
		}
	}
}

func (s *scanner) list(depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("nested deeper than %d levels", maxDepth)
	}
	s.pos++ // '['
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		return nil
	}
	for {
		s.skipSpace()
		if err := s.value(depth); err != nil {
			return err
		}
		s.skipSpace()
		if s.pos >= len(s.data) {
			return fmt.Errorf("the array is not closed: expected ',' or ']', got %s", s.describe())
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case ']':
			s.pos++
			return nil
		default:
			return fmt.Errorf("expected ',' or ']' after an array element, got %s", s.describe())
		}
	}
}

// str checks a string starting at the opening quote.
func (s *scanner) str() error {
	s.pos++ // '"'
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			s.pos++
			return nil
		case c == '\\':
			if err := s.escape(); err != nil {
				return err
			}
		case c < 0x20:
			return fmt.Errorf("control character %s inside a string (escape it)", s.describe())
		default:
			s.pos++
		}
	}
	return fmt.Errorf("the string is not closed: expected '\"', got %s", s.describe())
}

// escape checks one escape sequence starting at the backslash.
func (s *scanner) escape() error {
	s.pos++ // '\\'
	if s.pos >= len(s.data) {
		return fmt.Errorf("incomplete escape sequence: got %s", s.describe())
	}
	switch s.data[s.pos] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.pos++
		return nil
	case 'u':
		s.pos++
		for range 4 {
			if s.pos >= len(s.data) || !isHex(s.data[s.pos]) {
				return fmt.Errorf(`expected 4 hex digits after \u, got %s`, s.describe())
			}
			s.pos++
		}
		return nil
	}
	return fmt.Errorf(`invalid escape sequence '\%c'`, s.data[s.pos])
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// number checks -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() error {
	if s.data[s.pos] == '-' {
		s.pos++
	}
	switch {
	case s.pos < len(s.data) && s.data[s.pos] == '0':
		s.pos++
	case s.pos < len(s.data) && isDigit(s.data[s.pos]):
		s.digits()
	default:
		return fmt.Errorf("expected a digit in a number, got %s", s.describe())
	}
	if s.pos < len(s.data) && s.data[s.pos] == '.' {
		s.pos++
		if s.pos >= len(s.data) || !isDigit(s.data[s.pos]) {
			return fmt.Errorf("expected a digit after the decimal point, got %s", s.describe())
		}
		s.digits()
	}
	if s.pos < len(s.data) && (s.data[s.pos] == 'e' || s.data[s.pos] == 'E') {
		s.pos++
		if s.pos < len(s.data) && (s.data[s.pos] == '+' || s.data[s.pos] == '-') {
			s.pos++
		}
		if s.pos >= len(s.data) || !isDigit(s.data[s.pos]) {
			return fmt.Errorf("expected a digit in the exponent, got %s", s.describe())
		}
		s.digits()
	}
	return nil
}

func (s *scanner) digits() {
	for s.pos < len(s.data) && isDigit(s.data[s.pos]) {
		s.pos++
	}
}

func (s *scanner) literal(word string) error {
	for i := 0; i < len(word); i++ {
		if s.pos >= len(s.data) || s.data[s.pos] != word[i] {
			return fmt.Errorf("expected %q, got %s", word, s.describe())
		}
		s.pos++
	}
	return nil
}
