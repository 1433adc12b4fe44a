package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestSplitBody(t *testing.T) {
	tests := []struct {
		name   string
		ndjson bool
		body   string
		want   []string
		err    string
	}{
		{
			name:   "ndjson with blank lines and crlf",
			ndjson: true,
			body:   "\n{\"a\":1}\r\n\r\n  {\"b\" : [1, 2.5e-3, -0, true, false, null]}\t\n\n",
			want:   []string{`{"a":1}`, `{"b" : [1, 2.5e-3, -0, true, false, null]}`},
		},
		{
			name:   "ndjson keeps non-objects for the decoder to reject",
			ndjson: true,
			body:   "[1,2]\n\"s\"\n7\n",
			want:   []string{`[1,2]`, `"s"`, `7`},
		},
		{
			name: "array of mixed values",
			body: ` [ {"a":"x\"y\\z\u00e9\/"} ,{"n":{"m":[[],{}]}}, 3 ] `,
			want: []string{`{"a":"x\"y\\z\u00e9\/"}`, `{"n":{"m":[[],{}]}}`, `3`},
		},
		{
			name: "empty array",
			body: "[\n]",
			want: []string{},
		},
		{
			name: "one pretty-printed object",
			body: "{\n  \"a\": 1,\n  \"b\": {\"c\": null}\n}\n",
			want: []string{"{\n  \"a\": 1,\n  \"b\": {\"c\": null}\n}"},
		},
		{
			name: "values run together",
			body: `{"a":1}{"a":2} {"a":3}`,
			want: []string{`{"a":1}`, `{"a":2}`, `{"a":3}`},
		},
		{
			name:   "ndjson value spanning lines",
			ndjson: true,
			body:   "{\"a\":1}\n{\"a\":\n2}",
			err:    `invalid JSON at line 2, column 6 (event 1): unexpected end of the line: an NDJSON event must be complete on one line`,
		},
		{
			name:   "ndjson string not closed",
			ndjson: true,
			body:   `{"a":"xyz}`,
			err:    `invalid JSON at line 1, column 11 (event 0): unexpected end of the line: an NDJSON event must be complete on one line`,
		},
		{
			name: "bad escape",
			body: `{"a":"\x"}`,
			err:  `invalid JSON at line 1, column 8 (event 0): invalid character 'x' in string escape code`,
		},
		{
			name: "short unicode escape",
			body: `{"a":"\u12"}`,
			err:  `invalid JSON at line 1, column 11 (event 0): invalid character '"' in \u hexadecimal character escape`,
		},
		{
			name: "control character in a string",
			body: "{\"a\":\"x\ty\"}",
			err:  `invalid JSON at line 1, column 8 (event 0): invalid character '\t' in string literal`,
		},
		{
			name: "leading zero",
			body: `{"a":01}`,
			err:  `invalid JSON at line 1, column 7 (event 0): invalid character '1' after object key:value pair`,
		},
		{
			name: "bare decimal point",
			body: `[{"a":1.}]`,
			err:  `invalid JSON at line 1, column 9 (event 0): invalid character '}' after decimal point in numeric literal`,
		},
		{
			name: "exponent without digits",
			body: `{"a":1e+}`,
			err:  `invalid JSON at line 1, column 9 (event 0): invalid character '}' in exponent of numeric literal`,
		},
		{
			name: "unquoted field name",
			body: "{\"a\":1}\n\n{a:1}",
			err:  `invalid JSON at line 3, column 2 (event 1): invalid character 'a' looking for beginning of object key string`,
		},
		{
			name: "missing colon",
			body: `{"a" 1}`,
			err:  `invalid JSON at line 1, column 6 (event 0): invalid character '1' after object key`,
		},
		{
			name: "trailing comma in array",
			body: `[{"a":1},]`,
			err:  `invalid JSON at line 1, column 10 (event 1): invalid character ']' looking for beginning of value`,
		},
		{
			name: "data after the array",
			body: `[{"a":1}] {"a":2}`,
			err:  `invalid JSON at line 1, column 11 (event 1): unexpected '{' after the array`,
		},
		{
			name: "misspelled literal",
			body: `{"a":tru}`,
			err:  `invalid JSON at line 1, column 9 (event 0): invalid character '}' in literal true (expecting 'e')`,
		},
		{
			name: "nesting too deep",
			body: strings.Repeat(`{"a":`, 10001) + "1" + strings.Repeat("}", 10001),
			err:  `invalid JSON at line 1, column 50001 (event 0): invalid character '{' exceeded max depth`,
		},
		{
			name: "nesting at the limit in an array",
			body: "[" + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + "]",
			want: []string{strings.Repeat("[", 10000) + strings.Repeat("]", 10000)},
		},
		{
			name:   "ndjson with two events on a line",
			ndjson: true,
			body:   "{\"a\":1}\n{\"a\":2}  {\"a\":3}\n",
			err:    `invalid JSON at line 2, column 10 (event 1): unexpected '{' after the event (NDJSON holds one event per line)`,
		},
		{
			name:   "ndjson syntax error after leading space",
			ndjson: true,
			body:   "{\"a\":1}\n\t {\"a\":[1 2]}\r\n",
			err:    `invalid JSON at line 2, column 11 (event 1): invalid character '2' after array element`,
		},
		{
			name: "missing comma in array",
			body: "[{\"a\":1}\n {\"a\":2}]",
			err:  `invalid JSON at line 2, column 2 (event 1): expected ',' or ']' after an array element, got '{'`,
		},
		{
			name: "array closed by a brace",
			body: `[{"a":1}}`,
			err:  `invalid JSON at line 1, column 9 (event 1): invalid character '}' after array element`,
		},
		{
			name: "array opened and closed by a brace",
			body: `[}`,
			err:  `invalid JSON at line 1, column 2 (event 0): invalid character '}' looking for beginning of value`,
		},
		{
			name: "array not closed",
			body: "[{\"a\":1},\n{\"a\":2}\n",
			err:  `invalid JSON at line 3, column 1 (event 2): the array is not closed: expected ',' or ']', got the end of the body`,
		},
		{
			name: "array element cut short",
			body: "[{\"a\":1},\n{\"a\":\"x",
			err:  `invalid JSON at line 2, column 8 (event 1): unexpected end of the body`,
		},
		{
			name: "object cut short",
			body: "{\"a\":1}\n{\"a\":",
			err:  `invalid JSON at line 2, column 6 (event 1): unexpected end of the body`,
		},
		{
			name: "stray bracket after a value",
			body: `{"a":1}]`,
			err:  `invalid JSON at line 1, column 8 (event 1): invalid character ']' looking for beginning of value`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := splitBody([]byte(tt.body), tt.ndjson)
			if tt.err != "" {
				if err == nil {
					t.Fatalf("split %q: got events %q, want error %q", tt.body, events, tt.err)
				}
				if diff := cmp.Diff(tt.err, err.Error()); diff != "" {
					t.Errorf("error (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("split %q: %v", tt.body, err)
			}
			got := make([]string, len(events))
			for i, e := range events {
				got[i] = string(e)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIsNDJSON(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/x-ndjson":                true,
		"application/x-ndjson; charset=utf-8": true,
		"Application/JSONL":                   true,
		"application/json":                    false,
		"text/plain":                          false,
		"":                                    false,
		"application/x-ndjson; =":             false,
	} {
		if got := isNDJSON(ct); got != want {
			t.Errorf("isNDJSON(%q) = %v, want %v", ct, got, want)
		}
	}
}

func TestCompact(t *testing.T) {
	for in, want := range map[string]string{
		`{"a": 1, "b": [2]}`:                    `{"a": 1, "b": [2]}`,
		"{\n\t\"b\": 1,\r\n  \"a\": \"x y\"\n}": `{"b":1,"a":"x y"}`,
	} {
		if got := string(compact([]byte(in))); got != want {
			t.Errorf("compact(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzSplitBody checks the splitter against json.Valid and json.Unmarshal,
// and that every error points inside the body.
func FuzzSplitBody(f *testing.F) {
	for _, s := range []string{
		`{"a":1}`, "{\"a\":1}\n{\"b\":[true,null]}\n", `[{"a":"\u00e9"},2,"x"]`, `[]`, `{"a":-0.5e+10}`,
		`{"a":"\"}`, `[1,]`, "{\n}", `{"a":01}`, `nul`, "\x00", `[[[`, `{"a":1}}`,
		"[{\"a\":1}\n {\"a\":2}]", `[}`, `{"a":1}]`, "1 2\n3", "[1]\n2",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, ndjson bool) {
		events, err := splitBody(body, ndjson)
		if err != nil {
			var se *syntaxError
			if !errors.As(err, &se) || events != nil {
				t.Fatalf("split %q: events %q, error %v; want no events and a *syntaxError", body, events, err)
			}
			lines := bytes.Split(body, []byte{'\n'})
			if se.Line < 1 || se.Line > len(lines) || se.Column < 1 || se.Column > len(lines[se.Line-1])+1 || se.Event < 0 {
				t.Fatalf("split %q: error %v points outside the body", body, err)
			}
		}
		for _, e := range events {
			if !json.Valid(e) {
				t.Fatalf("event %q of %q is not valid JSON", e, body)
			}
			if len(bytes.TrimLeft(e, " \t\r\n")) != len(e) || len(bytes.TrimRight(e, " \t\r\n")) != len(e) {
				t.Fatalf("event %q of %q has surrounding space", e, body)
			}
		}
		switch trimmed := bytes.Trim(body, " \t\r\n"); {
		case ndjson:
			var want [][]byte
			valid := true
			for line := range bytes.SplitSeq(body, []byte{'\n'}) {
				line = bytes.Trim(line, " \t\r")
				if len(line) == 0 {
					continue
				}
				valid = valid && json.Valid(line)
				want = append(want, line)
			}
			if valid != (err == nil) {
				t.Fatalf("ndjson %q: error %v, but every line valid = %v", body, err, valid)
			}
			if err == nil && !cmp.Equal(want, events, cmp.Comparer(bytes.Equal), cmpopts.EquateEmpty()) {
				t.Fatalf("ndjson %q: events %q, want %q", body, events, want)
			}
		case len(trimmed) > 0 && trimmed[0] == '[':
			if json.Valid(body) != (err == nil) {
				t.Fatalf("array %q: error %v, but json.Valid = %v", body, err, json.Valid(body))
			}
			var want []json.RawMessage
			if err == nil && json.Unmarshal(body, &want) == nil {
				got := make([]json.RawMessage, len(events))
				for i, e := range events {
					got[i] = e
				}
				if !cmp.Equal(want, got, cmp.Comparer(bytes.Equal), cmpopts.EquateEmpty()) {
					t.Fatalf("array %q: events %q, want %q", body, got, want)
				}
			}
		case json.Valid(body):
			if err != nil || len(events) != 1 || !bytes.Equal(events[0], trimmed) {
				t.Fatalf("one value %q: events %q, error %v", body, events, err)
			}
		default:
			want, werr := decodeAll(body)
			if (werr == nil) != (err == nil) {
				t.Fatalf("sequence %q: error %v, but decoding value by value gives error %v", body, err, werr)
			}
			if err == nil && !cmp.Equal(want, events, cmp.Comparer(bytes.Equal), cmpopts.EquateEmpty()) {
				t.Fatalf("sequence %q: events %q, want %q", body, events, want)
			}
		}
	})
}

// decodeAll reads the values of body one after another with a Decoder.
func decodeAll(body []byte) ([][]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var values [][]byte
	for {
		var v json.RawMessage
		if err := dec.Decode(&v); err == io.EOF {
			return values, nil
		} else if err != nil {
			return nil, err
		}
		values = append(values, v)
	}
}

// eventBody returns n events of about 200 bytes each, framed as NDJSON,
// a JSON array, or values separated by newlines without an NDJSON type.
func eventBody(n int, framing string) []byte {
	var b bytes.Buffer
	if framing == "array" {
		b.WriteByte('[')
	}
	for i := range n {
		if framing == "array" && i > 0 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, `{"txn_id":"txn-%08d","user_id":"user-%05d","merchant_id":"m-%04d","amount":%d.%02d,`+
			`"country":"DE","is_fraud":%t,"ts":"2024-05-01T10:%02d:%02d.%03dZ","tags":["web","card"],"channel":"api","note":null}`,
			i, i*7919%10000, i%997, i%1000, i%100, i%13 == 0, i/60%60, i%60, i%1000)
		if framing != "array" {
			b.WriteByte('\n')
		}
	}
	if framing == "array" {
		b.WriteByte(']')
	}
	return b.Bytes()
}

// BenchmarkSplitBody splits a 1,000-event body in each framing.
func BenchmarkSplitBody(b *testing.B) {
	for _, framing := range []string{"ndjson", "array", "sequence"} {
		b.Run(framing, func(b *testing.B) {
			body := eventBody(1000, framing)
			b.SetBytes(int64(len(body)))
			events := 0
			for b.Loop() {
				got, err := splitBody(body, framing == "ndjson")
				if err != nil || len(got) != 1000 {
					b.Fatalf("split: %d events, error %v", len(got), err)
				}
				events += len(got)
			}
			b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
