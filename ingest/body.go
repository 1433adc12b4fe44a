package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
// splitBody checks the JSON syntax of the whole body with encoding/json,
// without decoding the events into Go values, and returns each event's bytes
// as a sub-slice of the body, in body order. A syntax error anywhere fails the
// whole body, so a request is never half-produced because of a framing
// problem. encoding/json also bounds the nesting depth (10,000 levels).

// jsonSpace is the white space JSON allows between values.
const jsonSpace = " \t\r\n"

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

// bodyError builds a syntaxError for the byte at pos of body (pos may be
// len(body), the end of the body).
func bodyError(body []byte, pos, event int, msg string) error {
	line := 1 + bytes.Count(body[:pos], []byte{'\n'})
	col := pos - bytes.LastIndexByte(body[:pos], '\n')
	return &syntaxError{Line: line, Column: col, Event: event, Msg: msg}
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
	if rest := bytes.TrimLeft(body, jsonSpace); len(rest) > 0 && rest[0] == '[' {
		return splitArray(body)
	}
	return splitSequence(body)
}

// splitLines splits NDJSON: every non-blank line holds exactly one value.
func splitLines(body []byte) ([][]byte, error) {
	events := make([][]byte, 0, bytes.Count(body, []byte{'\n'})+1)
	lineNo := 0
	for line := range bytes.Lines(body) {
		lineNo++
		event := bytes.Trim(line, jsonSpace)
		if len(event) == 0 {
			continue
		}
		if !json.Valid(event) {
			pos, msg := lineProblem(bytes.TrimSuffix(line, []byte{'\n'}))
			return nil, &syntaxError{Line: lineNo, Column: pos + 1, Event: len(events), Msg: msg}
		}
		events = append(events, event)
	}
	return events, nil
}

// lineProblem explains why an NDJSON line that json.Valid refused is not one
// JSON value: it returns the offset of the offending byte and the reason.
func lineProblem(line []byte) (int, string) {
	end, err := firstValue(line)
	switch {
	case err == io.ErrUnexpectedEOF:
		return len(line), "unexpected end of the line: an NDJSON event must be complete on one line"
	case err != nil:
		return errorOffset(line, err), err.Error()
	}
	pos := skipSpace(line, end)
	if pos == len(line) { // unreachable: json.Valid and Decode agree
		return pos, "invalid JSON"
	}
	return pos, fmt.Sprintf("unexpected %s after the event (NDJSON holds one event per line)", describe(line[pos]))
}

// splitArray reads one array whose elements are the events; only white
// space may follow it.
func splitArray(body []byte) ([][]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil { // the '[' that splitBody saw
		return nil, bodyError(body, 0, 0, err.Error())
	}
	var events [][]byte
	var raw json.RawMessage // reused: the events are sub-slices of body
	for dec.More() {
		at := int(dec.InputOffset()) // the element or, after the first, its comma
		if err := dec.Decode(&raw); err != nil {
			return nil, elementError(body, at, len(events), err)
		}
		end := int(dec.InputOffset())
		events = append(events, body[end-len(raw):end])
	}
	if _, err := dec.Token(); err != nil { // ']'
		if err == io.EOF {
			return nil, bodyError(body, len(body), len(events),
				"the array is not closed: expected ',' or ']', got the end of the body")
		}
		return nil, bodyError(body, int(dec.InputOffset()), len(events), err.Error())
	}
	if pos := skipSpace(body, int(dec.InputOffset())); pos < len(body) {
		return nil, bodyError(body, pos, len(events), fmt.Sprintf("unexpected %s after the array", describe(body[pos])))
	}
	return events, nil
}

// elementError explains a failed Decode of an array element; at is the
// decoder's offset before the call.
func elementError(body []byte, at, event int, err error) error {
	if event > 0 {
		if body[at] != ',' {
			return bodyError(body, at, event,
				fmt.Sprintf("expected ',' or ']' after an array element, got %s", describe(body[at])))
		}
		at++
	}
	return valueError(body, at, event, err)
}

// splitSequence reads white-space separated values until the end of body.
func splitSequence(body []byte) ([][]byte, error) {
	// NDJSON sent with another Content-Type splits the same by lines, and
	// json.Valid scans each value once where a Decoder scans it twice.
	if events, err := splitLines(body); err == nil {
		return events, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var events [][]byte
	var raw json.RawMessage // reused: the events are sub-slices of body
	for {
		at := int(dec.InputOffset())
		if err := dec.Decode(&raw); err != nil {
			if err == io.EOF {
				return events, nil
			}
			return nil, valueError(body, at, len(events), err)
		}
		end := int(dec.InputOffset())
		events = append(events, body[end-len(raw):end])
	}
}

// valueError explains err, the failed Decode of the value that starts, after
// white space, at body[at:].
func valueError(body []byte, at, event int, err error) error {
	if err == io.ErrUnexpectedEOF {
		return bodyError(body, len(body), event, "unexpected end of the body")
	}
	// The offsets of a Decoder leave out the bytes that Token and More
	// consumed, so decode the value again on its own to find the byte.
	if _, again := firstValue(body[at:]); again != nil {
		err = again
	}
	return bodyError(body, at+errorOffset(body[at:], err), event, err.Error())
}

// firstValue decodes the first JSON value of data with a fresh Decoder and
// returns the offset just after it.
func firstValue(data []byte) (int, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(new(json.RawMessage)); err != nil {
		return 0, err
	}
	return int(dec.InputOffset()), nil
}

// errorOffset returns the offset in data of the byte that made
// firstValue(data) fail with err: the end of data unless err is a
// *json.SyntaxError, whose Offset counts the offending byte.
func errorOffset(data []byte, err error) int {
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return len(data)
	}
	return min(max(int(se.Offset)-1, 0), len(data))
}

func skipSpace(data []byte, pos int) int {
	return len(data) - len(bytes.TrimLeft(data[pos:], jsonSpace))
}

// describe names a byte for error messages.
func describe(c byte) string {
	if c < 0x20 || c >= 0x7f {
		return fmt.Sprintf("byte 0x%02x", c)
	}
	return fmt.Sprintf("%q", rune(c))
}
