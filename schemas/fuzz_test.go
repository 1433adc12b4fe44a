package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// fuzzDecoders decode every input: the all-types schema in ms with unknown
// fields rejected, and a composite-key schema in seconds with an int64 time
// field and unknown fields ignored.
func fuzzDecoders(t testing.TB) []fuzzDecoder {
	ignore := &Schema{
		Stream:        "ignore",
		TimeField:     "at",
		TimeUnit:      Seconds,
		UnknownFields: IgnoreUnknown,
		KeyFields:     []string{"s", "n"},
		Fields: []Field{
			{Name: "s", Type: String},
			{Name: "n", Type: Int64},
			{Name: "at", Type: Int64},
			{Name: "ts", Type: Timestamp, Nullable: true},
			{Name: "f", Type: Float64, Default: 1.5},
		},
	}
	return []fuzzDecoder{
		{mustNewDecoder(t, decodeAllSchema()), []byte(`{"s":"other","n":2,"f":3,"b":true,"ts":"2000-01-01T00:00:00Z"}`)},
		{mustNewDecoder(t, ignore), []byte(`{"s":"other","n":2,"at":0,"x":{"y":[1]}}`)},
	}
}

// fuzzDecoder is a decoder and a valid event of its schema.
type fuzzDecoder struct {
	d     *Decoder
	valid []byte
}

func FuzzDecode(f *testing.F) {
	seeds := []string{
		`{` + decodeAllMin + `}`,
		`{"_event_id":"e1",` + decodeAllMin + `,"t":1714566600000,"opt":-5,"ds":"x","dn":3e2,"df":-0.5,"db":false,"dt":null}`,
		`{"s":"k|\\","n":9223372036854775807,"f":1e308,"b":true,"ts":"1900-01-01T00:00:00+00:00"}`,
		`{"s":"\u00e9\ud83d\ude00","n":-1.5e1,"f":5e-324,"b":true,"ts":"2199-12-31T23:59:59.999999999Z"}`,
		`{"s":"k","n":1,"at":1714566600,"ts":"1969-12-31T16:59:59.0000001-07:00","extra":[1,{"a":null}],"_x":true}`,
		`{"s":"k","n":0,"at":-2208988800,"f":0}`,
		`{"s":"","n":1,"f":2,"b":false,"ts":"2024-05-01T12:00:00Z"}`,
		`{"s":"k","n":1,"f":2,"b":false,"ts":"9999-01-01T00:00:00Z"}`,
		`{"s":"k","n":1,"f":2,"b":false,"ts":1714566600000000}`,
		`{"s":"k","n":1,"f":2,"b":false,"ts":"2024-05-01T1:30:00,5+24:00"}`,
		`{"s":"k","n":1,"f":2,"b":false,"ts":"2024-05-01 12:30:00z"}`,
		`{"s":"k","n":1,"n":2}`,
		`{"s":"a\ud800"}`,
		`{"s":"k","n":01}`,
		`{"s":"k","f":NaN}`,
		`{"s":"k","f":1e400}`,
		`[1,2,3]`,
		`"x"`,
		`null`,
		`{"s":`,
		"{\"s\":\"a\xffb\"}",
		strings.Repeat(`[`, 301),
		``,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	decoders := fuzzDecoders(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, fd := range decoders {
			d := fd.d
			ev, err := d.Decode(data)
			checkDecoded(t, d, data, ev, err)
			// The pooled parser must not carry state from one call to the next.
			if _, err := d.Decode(fd.valid); err != nil {
				t.Fatalf("Decode of a valid event: %v", err)
			}
			again, err2 := d.Decode(data)
			if diff := cmp.Diff(ev, again); diff != "" || (err == nil) != (err2 == nil) {
				t.Fatalf("second Decode differs (-first +second):\n%s\nerrors %v, %v", diff, err, err2)
			}
		}
	})
}

// checkDecoded checks the invariants of one Decode result.
func checkDecoded(t *testing.T, d *Decoder, data []byte, ev *Event, err error) {
	t.Helper()
	s := d.Schema()
	if err != nil {
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Stream != s.Stream {
			t.Fatalf("error %v (%T) is not a *FieldError of stream %q", err, err, s.Stream)
		}
		if n := len(err.Error()); n > 600 {
			t.Fatalf("error message of %d bytes: %s", n, err)
		}
		return
	}
	if !json.Valid(data) || !utf8.Valid(data) {
		t.Fatalf("Decode accepted invalid JSON %q", data)
	}
	if len(ev.Values) != len(s.Fields) {
		t.Fatalf("%d values for %d fields", len(ev.Values), len(s.Fields))
	}
	if ev.Time < MinTimestamp || ev.Time >= MaxTimestamp {
		t.Fatalf("Time %d is outside 1900..2200", ev.Time)
	}
	if len(ev.ID) > MaxEventIDBytes {
		t.Fatalf("ID of %d bytes", len(ev.ID))
	}
	for i, f := range s.Fields {
		if !hasGoType(ev.Values[i], f.Type) {
			t.Fatalf("field %q of type %s holds %#v (%T)", f.Name, f.Type, ev.Values[i], ev.Values[i])
		}
		if ev.Values[i] == nil && !f.Nullable {
			t.Fatalf("non-nullable field %q is nil", f.Name)
		}
		if str, ok := ev.Values[i].(string); ok && (len(str) > MaxStringBytes || !utf8.ValidString(str)) {
			t.Fatalf("field %q holds a bad string of %d bytes", f.Name, len(str))
		}
	}
	for _, k := range s.KeyFields {
		if v := ev.Values[s.Index(k)]; v == nil || v == "" {
			t.Fatalf("key field %q is %#v", k, v)
		}
	}
	if got, want := d.Key(ev), s.Key(ev); got != want {
		t.Fatalf("Key %q, Schema.Key %q", got, want)
	}
	checkAgainstStdlib(t, d, data, ev)
}

func hasGoType(v any, t Type) bool {
	switch v.(type) {
	case nil:
		return true
	case string:
		return t == String
	case int64:
		return t == Int64 || t == Timestamp
	case float64:
		return t == Float64
	case bool:
		return t == Bool
	}
	return false
}

// rfc3339 matches RFC 3339 timestamps with one to nine fractional digits,
// spelled out apart from the decoder to check the ones it accepts.
var rfc3339 = regexp.MustCompile(`^\d{4}-\d\d-\d\dT([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,9})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$`)

// checkAgainstStdlib decodes data again with encoding/json, time and
// math/big and compares every present, non-null field.
func checkAgainstStdlib(t *testing.T, d *Decoder, data []byte, ev *Event) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("encoding/json rejects accepted input: %v", err)
	}
	if id, ok := m[EventIDField]; ok && id != ev.ID {
		t.Fatalf("ID %q, encoding/json %q", ev.ID, id)
	}
	unit, _ := d.Schema().TimeUnit.Micros()
	for i, f := range d.Schema().Fields {
		raw, ok := m[f.Name]
		if !ok || raw == nil {
			continue
		}
		want := stdlibValue(t, f.Type, raw, unit)
		if got := ev.Values[i]; got != want {
			t.Fatalf("field %q = %#v, encoding/json gives %#v from %v", f.Name, got, want, raw)
		}
	}
}

func stdlibValue(t *testing.T, typ Type, raw any, unit int64) any {
	switch x := raw.(type) {
	case json.Number:
		r, ok := new(big.Rat).SetString(x.String())
		if !ok {
			t.Fatalf("math/big cannot read %s", x)
		}
		if typ == Float64 {
			v, _ := strconv.ParseFloat(x.String(), 64)
			return v
		}
		if !r.IsInt() || !r.Num().IsInt64() {
			t.Fatalf("%s is not an int64, yet it was accepted", x)
		}
		if typ == Timestamp {
			return r.Num().Int64() * unit
		}
		return r.Num().Int64()
	case string:
		if typ != Timestamp {
			return x
		}
		if !rfc3339.MatchString(x) {
			t.Fatalf("accepted timestamp %q is not RFC 3339", x)
		}
		tm, err := time.Parse(time.RFC3339Nano, x)
		if err != nil {
			t.Fatalf("time.Parse rejects accepted timestamp %q: %v", x, err)
		}
		ns := tm.UnixNano() // in range: the decoder accepts 1900..2200 only
		if ns%1000 < 0 {
			ns -= 1000 // round toward the past
		}
		return ns / 1000
	}
	return raw
}

// FuzzParseTimestamp checks that parseTimestamp accepts exactly the strings
// that are RFC 3339 with at most nine fractional digits and that time.Parse
// reads, and that it never panics on the others.
func FuzzParseTimestamp(f *testing.F) {
	for _, s := range []string{
		"2024-05-01T12:30:00Z", "2024-05-01T12:30:00.123456789+23:59", "1969-12-31T23:59:59.9999999-00:00",
		"2024-05-01T1:30:00Z", "2024-05-01T12:30:00,5Z", "2024-05-01T12:30:00+24:00", "2024-05-01T12:30:00-02:60",
		"2024-05-01T12:30:00.1234567891Z", "2024-05-01t12:30:00z", "2024-05-01 12:30:00Z", "2024-02-30T00:00:00Z",
		"2024-05-01T12:30:00+0200", "2024-05-01T12:30:00ZZ", "", "Z", "2024-05-01T12:30:00\xff\xfe",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		micros, problem, ok := parseTimestamp(s)
		tm, err := time.Parse(time.RFC3339Nano, s)
		if want := err == nil && rfc3339.MatchString(s); ok != want {
			t.Fatalf("parseTimestamp(%q) ok = %t (%s), want %t", s, ok, problem, want)
		}
		if ok && (micros != tm.Unix()*1_000_000+int64(tm.Nanosecond()/1000) || problem != "") {
			t.Fatalf("parseTimestamp(%q) = %d, %q; time.Parse gives %s", s, micros, problem, tm.Format(time.RFC3339Nano))
		}
		if n := len(problem); n > 240 { // an excerpt of 40 bytes, each quoted as \xNN at worst
			t.Fatalf("problem of %d bytes: %s", n, problem)
		}
	})
}
