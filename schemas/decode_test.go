package schemas

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// decodeTxnSchema is the transactions stream of the design document.
func decodeTxnSchema() *Schema {
	return &Schema{
		Stream:    "transactions",
		Version:   1,
		TimeField: "ts",
		TimeUnit:  Milliseconds,
		KeyFields: []string{"user_id"},
		Fields: []Field{
			{Name: "txn_id", Type: String},
			{Name: "user_id", Type: String},
			{Name: "merchant_id", Type: String},
			{Name: "amount", Type: Float64},
			{Name: "country", Type: String, Nullable: true},
			{Name: "is_fraud", Type: Bool, Nullable: true},
			{Name: "ts", Type: Timestamp},
		},
	}
}

// decodeAllSchema has every type, nullable and not, and defaults.
func decodeAllSchema() *Schema {
	return &Schema{
		Stream:    "all",
		TimeField: "ts",
		KeyFields: []string{"s"},
		Fields: []Field{
			{Name: "s", Type: String},
			{Name: "n", Type: Int64},
			{Name: "f", Type: Float64},
			{Name: "b", Type: Bool},
			{Name: "ts", Type: Timestamp},
			{Name: "t", Type: Timestamp, Nullable: true},
			{Name: "opt", Type: Int64, Nullable: true},
			{Name: "ds", Type: String, Default: "none"},
			{Name: "dn", Type: Int64, Default: 7},
			{Name: "df", Type: Float64, Default: 0.5},
			{Name: "db", Type: Bool, Default: true},
			{Name: "dt", Type: Timestamp, Default: "2024-01-01T00:00:00Z"},
			{Name: "dnull", Type: Float64, Nullable: true, Default: 1.0},
		},
	}
}

func mustNewDecoder(t testing.TB, s *Schema) *Decoder {
	t.Helper()
	d, err := NewDecoder(s)
	if err != nil {
		t.Fatalf("NewDecoder: %v", err)
	}
	return d
}

func rfcMicros(s string) int64 {
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return tm.UnixMicro()
}

// decodeAllMin is the smallest valid event of decodeAllSchema.
const decodeAllMin = `"s":"k","n":1,"f":2,"b":false,"ts":"2024-05-01T12:00:00Z"`

// decodeAllDefaults are the values decodeAllSchema's optional fields take when absent:
// t, opt, ds, dn, df, db, dt, dnull.
var decodeAllDefaults = []any{nil, nil, "none", int64(7), 0.5, true, rfcMicros("2024-01-01T00:00:00Z"), 1.0}

func decodeAllEvent(id string, s string, n int64, f float64, b bool, ts string, rest ...any) *Event {
	vals := []any{s, n, f, b, rfcMicros(ts)}
	for i, d := range decodeAllDefaults {
		if i < len(rest) {
			vals = append(vals, rest[i])
		} else {
			vals = append(vals, d)
		}
	}
	return &Event{ID: id, Time: rfcMicros(ts), Values: vals}
}

func TestDecodeValues(t *testing.T) {
	const ts = "2024-05-01T12:00:00Z"
	tests := []struct {
		name string
		json string
		want *Event
	}{
		{"minimal: defaults and nulls", `{` + decodeAllMin + `}`, decodeAllEvent("", "k", 1, 2, false, ts)},
		{"whitespace and other order", " \n{\t\"ts\" : \"2024-05-01T12:00:00Z\", \"b\":false,\"f\":2,\"n\":1,\"s\":\"k\" }\r\n",
			decodeAllEvent("", "k", 1, 2, false, ts)},
		{"every field set", `{` + decodeAllMin + `,"t":"2000-01-01T00:00:00Z","opt":-3,"ds":"x","dn":8,"df":1e-3,"db":false,"dt":86400000,"dnull":null}`,
			decodeAllEvent("", "k", 1, 2, false, ts, rfcMicros("2000-01-01T00:00:00Z"), int64(-3), "x", int64(8), 0.001, false, rfcMicros("1970-01-02T00:00:00Z"), nil)},
		{"explicit null for nullable fields", `{` + decodeAllMin + `,"t":null,"opt":null}`, decodeAllEvent("", "k", 1, 2, false, ts)},
		{"event id", `{"_event_id":"evt-1",` + decodeAllMin + `}`, decodeAllEvent("evt-1", "k", 1, 2, false, ts)},
		{"event id of 64 bytes", `{"_event_id":"` + strings.Repeat("i", 64) + `",` + decodeAllMin + `}`,
			decodeAllEvent(strings.Repeat("i", 64), "k", 1, 2, false, ts)},
		{"string escapes", `{"s":"a\"b\\c\u00e9\n\ud83d\ude00/","n":1,"f":2,"b":true,"ts":"` + ts + `"}`,
			decodeAllEvent("", "a\"b\\c\u00e9\n\U0001F600/", 1, 2, true, ts)},
		{"escaped backslash before u", `{"s":"\\ud800\\","n":1,"f":2,"b":true,"ts":"` + ts + `"}`, decodeAllEvent("", `\ud800\`, 1, 2, true, ts)},
		{"raw utf-8", `{"s":"Zürich 東京","n":1,"f":2,"b":true,"ts":"` + ts + `"}`, decodeAllEvent("", "Zürich 東京", 1, 2, true, ts)},
		{"escaped key", `{"\u0073":"k","n":1,"f":2,"b":false,"ts":"` + ts + `"}`, decodeAllEvent("", "k", 1, 2, false, ts)},
		{"string of 64 KiB", `{"s":"` + strings.Repeat("x", MaxStringBytes) + `","n":1,"f":2,"b":false,"ts":"` + ts + `"}`,
			decodeAllEvent("", strings.Repeat("x", MaxStringBytes), 1, 2, false, ts)},
		{"int64 extremes", `{"s":"k","n":-9223372036854775808,"f":2,"b":false,"ts":"` + ts + `","opt":9223372036854775807}`,
			decodeAllEvent("", "k", math.MinInt64, 2, false, ts, nil, int64(math.MaxInt64))},
		{"int64 exact exponents", `{"s":"k","n":12e3,"f":2,"b":false,"ts":"` + ts + `","opt":-1500E-2,"dn":0e-999}`,
			decodeAllEvent("", "k", 12000, 2, false, ts, nil, int64(-15), "none", int64(0))},
		{"int64 negative zero", `{"s":"k","n":-0,"f":2,"b":false,"ts":"` + ts + `"}`, decodeAllEvent("", "k", 0, 2, false, ts)},
		{"float64 forms", `{"s":"k","n":1,"f":-1.25e+2,"b":false,"ts":"` + ts + `","df":1.7976931348623157e308,"dnull":5e-324}`,
			decodeAllEvent("", "k", 1, -125, false, ts, nil, nil, "none", int64(7), math.MaxFloat64, true, rfcMicros("2024-01-01T00:00:00Z"), 5e-324)},
		{"float64 from integer", `{"s":"k","n":1,"f":9007199254740993,"b":false,"ts":"` + ts + `"}`,
			decodeAllEvent("", "k", 1, 9007199254740992, false, ts)},
		{"bool true", `{"s":"k","n":1,"f":2,"b":true,"ts":"` + ts + `"}`, decodeAllEvent("", "k", 1, 2, true, ts)},
	}
	d := mustNewDecoder(t, decodeAllSchema())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := d.Decode([]byte(tt.json))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("event (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	const ts = `"ts":"2024-05-01T12:00:00Z"`
	tests := []struct {
		name  string
		json  string
		field string
		want  string
	}{
		{"empty input", " \n", "", `stream "all": invalid JSON: empty input (send one JSON object)`},
		{"truncated", `{"s":"k",`, "", `stream "all": invalid JSON at byte 9: cannot find opening '"" for object key (at the end of the input)`},
		{"trailing garbage", `{` + decodeAllMin + `} x`, "", `stream "all": invalid JSON at byte 60: unexpected data after the object (near "x")`},
		{"two objects", `{` + decodeAllMin + `}{}`, "", `stream "all": invalid JSON at byte 59: unexpected data after the object (near "{}")`},
		{"NaN", `{"s":"k","n":1,"f":NaN,"b":false,` + ts + `}`, "", `stream "all": invalid JSON at byte 19: cannot parse number: expecting 0..9 digit, got N (near "NaN,\"b\":false,\"ts\":\"2024-05-01T12:00:00Z"...)`},
		{"leading zero", `{"s":"k","n":01,"f":2,"b":false}`, "", `stream "all": invalid JSON at byte 13: cannot parse number: unexpected number starting from 0 (near "01,\"f\":2,\"b\":false}")`},
		{"bad escape", `{"s":"\x","n":1}`, "", `stream "all": invalid JSON at byte 9: cannot parse string: unknown escape sequence \x (near ",\"n\":1}")`},
		{"control character", "{\"s\":\"a\tb\",\"n\":1}", "", `stream "all": invalid JSON at byte 10: string cannot contain control char 0x09 (near ",\"n\":1}")`},
		{"invalid utf-8", "{\"s\":\"a\xffb\"}", "", `stream "all": invalid JSON: not valid UTF-8 at byte 7`},
		{"lone high surrogate", `{"s":"a\ud800","n":1}`, "", `stream "all": invalid JSON at byte 7: unpaired UTF-16 surrogate \ud800 (write characters beyond U+FFFF as UTF-8 or as a surrogate pair)`},
		{"high then not low", `{"s":"\uD800\u0041"}`, "", `stream "all": invalid JSON at byte 6: unpaired UTF-16 surrogate \uD800 (write characters beyond U+FFFF as UTF-8 or as a surrogate pair)`},
		{"lone low surrogate", `{"x":1,"\udc00":1}`, "", `stream "all": invalid JSON at byte 8: unpaired UTF-16 surrogate \udc00 (write characters beyond U+FFFF as UTF-8 or as a surrogate pair)`},
		{"too deep", strings.Repeat(`{"a":`, 400), "", `stream "all": invalid JSON: too big depth for the nested JSON; it exceeds 300 (near "{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":"...)`},
		{"array", `[{"s":"k"}]`, "", `stream "all": expected a JSON object, got array`},
		{"string", `"hello"`, "", `stream "all": expected a JSON object, got string "hello"`},
		{"null", `null`, "", `stream "all": expected a JSON object, got null`},
		{"number", `12`, "", `stream "all": expected a JSON object, got number 12`},
		{"missing", `{"n":1,"f":2,"b":false,` + ts + `}`, "s", `stream "all": field "s": required field is missing`},
		{"null not nullable", `{` + decodeAllMin + `,"dn":null}`, "dn", `stream "all": field "dn": null is not allowed (declare nullable: true to accept it)`},
		{"string got number", `{"s":5,"n":1,"f":2,"b":false,` + ts + `}`, "s", `stream "all": field "s": expected string, got number 5`},
		{"float got string", `{"s":"k","n":1,"f":"12,5","b":false,` + ts + `}`, "f", `stream "all": field "f": expected float64, got string "12,5"`},
		{"float overflow", `{"s":"k","n":1,"f":1e400,"b":false,` + ts + `}`, "f", `stream "all": field "f": expected float64, got number 1e400 (out of float64 range)`},
		{"int got fraction", `{"s":"k","n":1.5,"f":2,"b":false,` + ts + `}`, "n", `stream "all": field "n": expected int64, got number 1.5 (an int64 is written without a decimal point)`},
		{"int got 3.0", `{"s":"k","n":3.0,"f":2,"b":false,` + ts + `}`, "n", `stream "all": field "n": expected int64, got number 3.0 (an int64 is written without a decimal point)`},
		{"int inexact exponent", `{"s":"k","n":15e-1,"f":2,"b":false,` + ts + `}`, "n", `stream "all": field "n": expected int64, got number 15e-1 (not an integer)`},
		{"int overflow", `{"s":"k","n":9223372036854775808,"f":2,"b":false,` + ts + `}`, "n", `stream "all": field "n": expected int64, got number 9223372036854775808 (out of int64 range)`},
		{"int underflow", `{"s":"k","n":-9223372036854775809,"f":2,"b":false,` + ts + `}`, "n", `stream "all": field "n": expected int64, got number -9223372036854775809 (out of int64 range)`},
		{"int big exponent", `{"s":"k","n":1e19,"f":2,"b":false,` + ts + `}`, "n", `stream "all": field "n": expected int64, got number 1e19 (out of int64 range)`},
		{"int got string", `{"s":"k","n":"1","f":2,"b":false,` + ts + `}`, "n", `stream "all": field "n": expected int64, got string "1"`},
		{"bool got string", `{"s":"k","n":1,"f":2,"b":"true",` + ts + `}`, "b", `stream "all": field "b": expected bool, got string "true"`},
		{"bool got number", `{"s":"k","n":1,"f":2,"b":1,` + ts + `}`, "b", `stream "all": field "b": expected bool, got number 1`},
		{"got object", `{"s":{"a":1},"n":1,"f":2,"b":false,` + ts + `}`, "s", `stream "all": field "s": expected string, got object`},
		{"got array", `{"s":"k","n":[1],"f":2,"b":false,` + ts + `}`, "n", `stream "all": field "n": expected int64, got array`},
		{"long value excerpt", `{"s":"k","n":1,"f":"` + strings.Repeat("é", 30) + `","b":false,` + ts + `}`, "f",
			`stream "all": field "f": expected float64, got string "` + strings.Repeat("é", 20) + `"...`},
		{"long number excerpt", `{"s":"k","n":1` + strings.Repeat("0", 50) + `,"f":2,"b":false,` + ts + `}`, "n",
			`stream "all": field "n": expected int64, got number 1` + strings.Repeat("0", 39) + `... (out of int64 range)`},
		{"string too large", `{"s":"` + strings.Repeat("x", MaxStringBytes+1) + `","n":1,"f":2,"b":false,` + ts + `}`, "s",
			`stream "all": field "s": string of 65537 bytes is over the 65536-byte limit`},
		{"duplicate field", `{` + decodeAllMin + `,"n":2}`, "n", `stream "all": field "n": the field appears twice (send each field once)`},
		{"duplicate via escape", `{` + decodeAllMin + `,"\u006e":2}`, "n", `stream "all": field "n": the field appears twice (send each field once)`},
		{"unknown field", `{` + decodeAllMin + `,"foo":1}`, "foo", `stream "all": field "foo": not in the schema (add it to the schema, or set unknown_fields: ignore on the stream)`},
		{"reserved unknown", `{` + decodeAllMin + `,"_event_time":1}`, "_event_time", `stream "all": field "_event_time": not in the schema (add it to the schema, or set unknown_fields: ignore on the stream)`},
		{"event id number", `{"_event_id":5,` + decodeAllMin + `}`, "_event_id", `stream "all": field "_event_id": expected a string of 1 to 64 bytes, got number 5`},
		{"event id null", `{"_event_id":null,` + decodeAllMin + `}`, "_event_id", `stream "all": field "_event_id": expected a string of 1 to 64 bytes, got null`},
		{"event id empty", `{"_event_id":"",` + decodeAllMin + `}`, "_event_id", `stream "all": field "_event_id": empty id (omit the field to have an id assigned)`},
		{"event id too long", `{"_event_id":"` + strings.Repeat("i", 65) + `",` + decodeAllMin + `}`, "_event_id", `stream "all": field "_event_id": id of 65 bytes is over the 64-byte limit`},
		{"event id twice", `{"_event_id":"a","_event_id":"b",` + decodeAllMin + `}`, "_event_id", `stream "all": field "_event_id": the field appears twice (send each field once)`},
		{"time missing", `{"s":"k","n":1,"f":2,"b":false}`, "ts", `stream "all": field "ts": required field is missing`},
		{"time null", `{"s":"k","n":1,"f":2,"b":false,"ts":null}`, "ts", `stream "all": field "ts": null is not allowed (it is the event time)`},
		{"time out of range", `{"s":"k","n":1,"f":2,"b":false,"ts":"9999-01-01T00:00:00Z"}`, "ts", `stream "all": field "ts": timestamp 9999-01-01T00:00:00Z is outside 1900..2200 (check timestamp_unit)`},
		{"time integer out of range", `{"s":"k","n":1,"f":2,"b":false,"ts":1714564800000000}`, "ts", `stream "all": field "ts": timestamp 1714564800000000 (ms) is outside 1900..2200 (check timestamp_unit)`},
		{"time bad string", `{"s":"k","n":1,"f":2,"b":false,"ts":"yesterday"}`, "ts", `stream "all": field "ts": expected an RFC 3339 timestamp like 2024-05-01T12:30:00Z or an integer in ms, got string "yesterday"`},
		{"time bad day", `{"s":"k","n":1,"f":2,"b":false,"ts":"2023-02-29T00:00:00Z"}`, "ts", `stream "all": field "ts": expected an RFC 3339 timestamp like 2024-05-01T12:30:00Z or an integer in ms, got string "2023-02-29T00:00:00Z" (day out of range)`},
		{"time fraction number", `{"s":"k","n":1,"f":2,"b":false,"ts":1714564800000.5}`, "ts", `stream "all": field "ts": expected an RFC 3339 timestamp like 2024-05-01T12:30:00Z or an integer in ms, got number 1714564800000.5 (an int64 is written without a decimal point)`},
		{"time bool", `{"s":"k","n":1,"f":2,"b":false,"ts":true}`, "ts", `stream "all": field "ts": expected an RFC 3339 timestamp like 2024-05-01T12:30:00Z or an integer in ms, got bool true`},
		{"other timestamp out of range", `{` + decodeAllMin + `,"t":-2208988800001}`, "t", `stream "all": field "t": timestamp -2208988800001 (ms) is outside 1900..2200 (check timestamp_unit)`},
		{"key null", `{"s":null,"n":1,"f":2,"b":false,` + ts + `}`, "s", `stream "all": field "s": null is not allowed (it is part of the entity key)`},
		{"key empty", `{"s":"","n":1,"f":2,"b":false,` + ts + `}`, "s", `stream "all": field "s": empty string is not allowed (it is part of the entity key)`},
	}
	d := mustNewDecoder(t, decodeAllSchema())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := d.Decode([]byte(tt.json))
			if err == nil {
				t.Fatalf("Decode = %+v, want error %q", ev, tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error:\n got %s\nwant %s", got, tt.want)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T is not a *FieldError", err)
			}
			if fe.Stream != "all" || fe.Field != tt.field {
				t.Errorf("FieldError stream %q field %q, want %q %q", fe.Stream, fe.Field, "all", tt.field)
			}
		})
	}
}

func TestDecodeUnknownFields(t *testing.T) {
	const event = `{"txn_id":"t1","user_id":"u1","merchant_id":"m1","amount":12.5,"ts":1714564800000,` +
		`"extra":{"deep":[1,2,{"x":null}]},"_trace":"abc"}`
	want := &Event{Time: 1714564800000000, Values: []any{"t1", "u1", "m1", 12.5, nil, nil, int64(1714564800000000)}}
	for _, policy := range []UnknownFields{"", RejectUnknown, IgnoreUnknown} {
		t.Run(string(policy), func(t *testing.T) {
			s := decodeTxnSchema()
			s.UnknownFields = policy
			got, err := mustNewDecoder(t, s).Decode([]byte(event))
			if policy != IgnoreUnknown {
				want := `stream "transactions": field "extra": not in the schema (add it to the schema, or set unknown_fields: ignore on the stream)`
				if err == nil || err.Error() != want {
					t.Fatalf("Decode error = %v, want %s", err, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("event (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("ignored duplicates", func(t *testing.T) {
		s := decodeTxnSchema()
		s.UnknownFields = IgnoreUnknown
		d := mustNewDecoder(t, s)
		_, err := d.Decode([]byte(`{"a":1,"b":2,"txn_id":"t1","a":3,"user_id":"u1","merchant_id":"m1","amount":1,"ts":0}`))
		want := `stream "transactions": field "a": the field appears twice (send each field once)`
		if err == nil || err.Error() != want {
			t.Fatalf("Decode error = %v, want %s", err, want)
		}
	})
	t.Run("ignored invalid JSON", func(t *testing.T) {
		s := decodeTxnSchema()
		s.UnknownFields = IgnoreUnknown
		_, err := mustNewDecoder(t, s).Decode([]byte(`{"extra":[nan],"txn_id":"t1","user_id":"u1","merchant_id":"m1","amount":1,"ts":0}`))
		if err == nil || !strings.Contains(err.Error(), "invalid JSON") {
			t.Fatalf("Decode error = %v, want invalid JSON", err)
		}
	})
}

func TestDecodeTimestamps(t *testing.T) {
	tests := []struct {
		unit TimeUnit
		json string
		want string // RFC 3339 in UTC
	}{
		{"", `"2024-05-01T12:30:00Z"`, "2024-05-01T12:30:00Z"},
		{"", `"2024-05-01T14:30:00+02:00"`, "2024-05-01T12:30:00Z"},
		{"", `"2024-05-01T07:00:00-05:30"`, "2024-05-01T12:30:00Z"},
		{"", `"2024-05-01T12:30:00-00:00"`, "2024-05-01T12:30:00Z"},
		{"", `"2024-05-02T00:30:00+12:00"`, "2024-05-01T12:30:00Z"},
		{"", `"2024-12-31T23:59:59+23:59"`, "2024-12-31T00:00:59Z"},
		{"", `"2024-05-01T12:30:00.5Z"`, "2024-05-01T12:30:00.5Z"},
		{"", `"2024-05-01T12:30:00.123456Z"`, "2024-05-01T12:30:00.123456Z"},
		{"", `"2024-05-01T12:30:00.123456789Z"`, "2024-05-01T12:30:00.123456Z"},
		{"", `"2024-05-01T12:30:00.000000999Z"`, "2024-05-01T12:30:00Z"},
		{"", `"1969-12-31T23:59:59.9999999Z"`, "1969-12-31T23:59:59.999999Z"},
		{"", `"1969-12-31T23:59:59.0000001Z"`, "1969-12-31T23:59:59Z"},
		{"", `"1969-12-31T23:59:59.0000009Z"`, "1969-12-31T23:59:59Z"},
		{"", `"1969-12-31T23:59:59.000001999Z"`, "1969-12-31T23:59:59.000001Z"},
		{"", `"1950-06-15T10:00:00.1234567-03:00"`, "1950-06-15T13:00:00.123456Z"},
		{"", `"1900-01-01T00:00:00.000000999Z"`, "1900-01-01T00:00:00Z"},
		{"", `"2024-02-29T00:00:00Z"`, "2024-02-29T00:00:00Z"},
		{"", `"2000-02-29T00:00:00Z"`, "2000-02-29T00:00:00Z"},
		{"", `"1900-01-01T00:00:00Z"`, "1900-01-01T00:00:00Z"},
		{"", `"1900-01-01T01:00:00+01:00"`, "1900-01-01T00:00:00Z"},
		{"", `"2199-12-31T23:59:59.999999Z"`, "2199-12-31T23:59:59.999999Z"},
		{"", `1714566600000`, "2024-05-01T12:30:00Z"},
		{Milliseconds, `1714566600123`, "2024-05-01T12:30:00.123Z"},
		{Milliseconds, `-1`, "1969-12-31T23:59:59.999Z"},
		{Milliseconds, `-2208988800000`, "1900-01-01T00:00:00Z"},
		{Seconds, `1714566600`, "2024-05-01T12:30:00Z"},
		{Seconds, `1.7145666e9`, "2024-05-01T12:30:00Z"},
		{Seconds, `7258118399`, "2199-12-31T23:59:59Z"},
		{Microseconds, `1714566600123456`, "2024-05-01T12:30:00.123456Z"},
		{Microseconds, `0`, "1970-01-01T00:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(string(tt.unit)+" "+tt.json, func(t *testing.T) {
			s := decodeAllSchema()
			s.TimeUnit = tt.unit
			ev, err := mustNewDecoder(t, s).Decode([]byte(`{"s":"k","n":1,"f":2,"b":false,"ts":` + tt.json + `,"t":` + tt.json + `}`))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			want := rfcMicros(tt.want)
			if ev.Time != want || ev.Values[4] != want || ev.Values[5] != want {
				t.Errorf("Time %s, values %v %v, want %s", time.UnixMicro(ev.Time).UTC().Format(time.RFC3339Nano), ev.Values[4], ev.Values[5], tt.want)
			}
		})
	}
}

func TestDecodeTimestampsRejected(t *testing.T) {
	// notTS starts the error about a value that is no timestamp in ms.
	const notTS = "expected an RFC 3339 timestamp like 2024-05-01T12:30:00Z or an integer in ms, got "
	tests := []struct {
		unit TimeUnit
		json string
		want string // the error after the field name
	}{
		{"", `"2200-01-01T00:00:00Z"`, "timestamp 2200-01-01T00:00:00Z is outside 1900..2200 (check timestamp_unit)"},
		{"", `"1900-01-01T00:59:59+01:00"`, "timestamp 1900-01-01T00:59:59+01:00 is outside 1900..2200 (check timestamp_unit)"},
		{"", `"1899-12-31T23:59:59.9999999Z"`, "timestamp 1899-12-31T23:59:59.9999999Z is outside 1900..2200 (check timestamp_unit)"},
		{"", `"0000-01-01T00:00:00Z"`, "timestamp 0000-01-01T00:00:00Z is outside 1900..2200 (check timestamp_unit)"},
		{Seconds, `7258118400`, "timestamp 7258118400 (s) is outside 1900..2200 (check timestamp_unit)"},
		{Seconds, `1714566600000`, "timestamp 1714566600000 (s) is outside 1900..2200 (check timestamp_unit)"},
		{Seconds, `-9223372036854775808`, "timestamp -9223372036854775808 (s) is outside 1900..2200 (check timestamp_unit)"},
		{Milliseconds, `1714566600000000`, "timestamp 1714566600000000 (ms) is outside 1900..2200 (check timestamp_unit)"},
		{Microseconds, `-2208988800000001`, "timestamp -2208988800000001 (us) is outside 1900..2200 (check timestamp_unit)"},
		{"", `"2024-05-01T12:30:00.1234567891Z"`, notTS + `string "2024-05-01T12:30:00.1234567891Z" (more than 9 fractional digits)`},
		{"", `"2024-05-01T12:30:00,5Z"`, notTS + `string "2024-05-01T12:30:00,5Z" (write the fraction of a second after '.', not ',')`},
		{"", `"2024-05-01T12:30:00.Z"`, notTS + `string "2024-05-01T12:30:00.Z" (zone ".Z" is not Z or an offset like +02:00)`},
		{"", `"2024-05-01T12:30:00"`, notTS + `string "2024-05-01T12:30:00" (no zone: end with Z or an offset like +02:00)`},
		{"", `"2024-05-01T12:30:00+0200"`, notTS + `string "2024-05-01T12:30:00+0200" (zone "+0200" is not Z or an offset like +02:00)`},
		{"", `"2024-05-01T12:30:00 Z"`, notTS + `string "2024-05-01T12:30:00 Z" (zone " Z" is not Z or an offset like +02:00)`},
		{"", `"2024-05-01T12:30:00+24:00"`, notTS + `string "2024-05-01T12:30:00+24:00" (zone offset out of range)`},
		{"", `"2024-05-01T12:30:00+02:60"`, notTS + `string "2024-05-01T12:30:00+02:60" (zone offset out of range)`},
		{"", `"2024-05-01T12:30:00+99:00"`, notTS + `string "2024-05-01T12:30:00+99:00" (time zone offset hour out of range)`},
		{"", `"2024-05-01T12:30:60Z"`, notTS + `string "2024-05-01T12:30:60Z" (second out of range)`},
		{"", `"2024-05-01T12:60:00Z"`, notTS + `string "2024-05-01T12:60:00Z" (minute out of range)`},
		{"", `"2024-05-01T24:00:00Z"`, notTS + `string "2024-05-01T24:00:00Z" (hour out of range)`},
		{"", `"2024-05-01T1:30:00Z"`, notTS + `string "2024-05-01T1:30:00Z" (write the hour with two digits)`},
		{"", `"2024-04-31T00:00:00Z"`, notTS + `string "2024-04-31T00:00:00Z" (day out of range)`},
		{"", `"2024-00-10T00:00:00Z"`, notTS + `string "2024-00-10T00:00:00Z" (month out of range)`},
		{"", `"2024-05-01"`, notTS + `string "2024-05-01"`},
		{"", `"2024-5-01T12:30:00Z"`, notTS + `string "2024-5-01T12:30:00Z"`},
		{"", `"+2024-05-01T12:30:00Z"`, notTS + `string "+2024-05-01T12:30:00Z"`},
		{"", `"2024-05-01t12:30:00z"`, notTS + `string "2024-05-01t12:30:00z"`},
		{"", `"2024-05-01 12:30:00Z"`, notTS + `string "2024-05-01 12:30:00Z"`},
		{"", `"2024-05-01T12:30:00z"`, notTS + `string "2024-05-01T12:30:00z" (zone "z" is not Z or an offset like +02:00)`},
		{"", `"2024-05-01T12:30:00ZZ"`, notTS + `string "2024-05-01T12:30:00ZZ" (unexpected text after the zone)`},
		{"", `"2024-05-01T12:30:00Z` + strings.Repeat("x", 100) + `"`, notTS + `string "2024-05-01T12:30:00Z` + strings.Repeat("x", 20) + `"... (unexpected text after the zone)`},
		{"", `"2024-05-01T12:30:00+01:00` + strings.Repeat("0", 40) + `"`, notTS + `string "2024-05-01T12:30:00+01:00000000000000000"... (unexpected text after the zone)`},
	}
	for _, tt := range tests {
		t.Run(string(tt.unit)+" "+tt.json, func(t *testing.T) {
			s := decodeAllSchema()
			s.TimeUnit = tt.unit
			_, err := mustNewDecoder(t, s).Decode([]byte(`{"s":"k","n":1,"f":2,"b":false,"ts":` + tt.json + `}`))
			want := `stream "all": field "ts": ` + tt.want
			if err == nil || err.Error() != want {
				t.Fatalf("Decode error:\n got %v\nwant %s", err, want)
			}
		})
	}
}

// TestParseTimestampFloors checks parseTimestamp over random instants of
// 1900..2200 in random zones with 0 to 9 fractional digits: the result is the
// instant in nanoseconds divided by 1000, rounded toward the past.
func TestParseTimestampFloors(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		ns := (MinTimestamp+rng.Int64N(MaxTimestamp-MinTimestamp))*1000 + rng.Int64N(1000)
		if unit := [...]int64{1, 10, 1e3, 1e6, 1e9}[rng.IntN(5)]; ns%unit != 0 { // fewer digits
			ns -= (ns%unit + unit) % unit
		}
		zone := time.FixedZone("", (rng.IntN(48)-24)*1800+rng.IntN(2)*900)
		text := time.Unix(0, ns).In(zone).Format(time.RFC3339Nano)
		want := ns / 1000
		if ns%1000 < 0 {
			want--
		}
		got, problem, ok := parseTimestamp(text)
		if !ok || got != want {
			t.Fatalf("parseTimestamp(%q) = %d, %q, %t; want %d", text, got, problem, ok, want)
		}
	}
}

func TestParseJSONInt(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		problem string
	}{
		{"0", 0, ""},
		{"-0", 0, ""},
		{"42", 42, ""},
		{"-42", -42, ""},
		{"9223372036854775807", math.MaxInt64, ""},
		{"-9223372036854775808", math.MinInt64, ""},
		{"9223372036854775808", 0, "out of int64 range"},
		{"-9223372036854775809", 0, "out of int64 range"},
		{"18446744073709551616", 0, "out of int64 range"},
		{"99999999999999999999999", 0, "out of int64 range"},
		{"1e0", 1, ""},
		{"1E+3", 1000, ""},
		{"9e18", 9e18, ""},
		{"1e19", 0, "out of int64 range"},
		{"0e99999999999999999999999", 0, ""},
		{"1e99999999999999999999999", 0, "out of int64 range"},
		{"1e-99999999999999999999999", 0, "not an integer"},
		{"100e-2", 1, ""},
		{"-4500E-2", -45, ""},
		{"15e-1", 0, "not an integer"},
		{"922337203685477580700e-2", math.MaxInt64, ""},
		{"1.0", 0, "an int64 is written without a decimal point"},
		{"1.5e3", 1500, ""},
		{"-1.7145666E9", -1714566600, ""},
		{"0.0001e4", 1, ""},
		{"1.25e1", 0, "not an integer"},
		{"1.5", 0, "an int64 is written without a decimal point"},
	}
	for _, tt := range tests {
		got, problem := parseJSONInt([]byte(tt.in))
		if got != tt.want || problem != tt.problem {
			t.Errorf("parseJSONInt(%s) = %d, %q; want %d, %q", tt.in, got, problem, tt.want, tt.problem)
		}
	}
}

func TestNewDecoderErrors(t *testing.T) {
	tests := []struct {
		name   string
		change func(s *Schema)
		want   string
	}{
		{"no stream", func(s *Schema) { s.Stream = "" }, "new decoder: the schema has no stream name"},
		{"empty name", func(s *Schema) { s.Fields[2].Name = "" }, `stream "transactions": field 3 has no name`},
		{"reserved name", func(s *Schema) { s.Fields[2].Name = "_merchant" }, `stream "transactions": field "_merchant": names starting with "_" are reserved (rename the field)`},
		{"duplicate name", func(s *Schema) { s.Fields[2].Name = "txn_id" }, `stream "transactions": field "txn_id" is declared twice`},
		{"bad type", func(s *Schema) { s.Fields[2].Type = 0 }, `stream "transactions": field "merchant_id": unknown type type(0) (use one of string, int64, float64, bool, timestamp)`},
		{"bad default", func(s *Schema) { s.Fields[3].Default = "12" }, `stream "transactions": field "amount": default 12 (string) does not match type float64`},
		{"fractional int default", func(s *Schema) { s.Fields[3].Type, s.Fields[3].Default = Int64, 1.5 }, `stream "transactions": field "amount": default 1.5 (float64) does not match type int64`},
		{"bad timestamp default", func(s *Schema) { s.Fields[4].Type, s.Fields[4].Default = Timestamp, "soon" }, `stream "transactions": field "country": default "soon" is not an RFC 3339 timestamp like 2024-05-01T12:30:00Z`},
		{"impossible timestamp default", func(s *Schema) { s.Fields[4].Type, s.Fields[4].Default = Timestamp, "2023-02-29T00:00:00Z" }, `stream "transactions": field "country": default "2023-02-29T00:00:00Z" is not an RFC 3339 timestamp like 2024-05-01T12:30:00Z (day out of range)`},
		{"old timestamp default", func(s *Schema) { s.Fields[4].Type, s.Fields[4].Default = Timestamp, int64(MinTimestamp-1) }, `stream "transactions": field "country": default timestamp 1899-12-31T23:59:59.999999Z is outside 1900..2200`},
		{"no time field", func(s *Schema) { s.TimeField = "" }, `stream "transactions": no timestamp field (set timestamp to the field that holds the event time)`},
		{"missing time field", func(s *Schema) { s.TimeField = "time" }, `stream "transactions": timestamp field "time" is not in the schema (add it, or name another field)`},
		{"string time field", func(s *Schema) { s.TimeField = "txn_id" }, `stream "transactions": timestamp field "txn_id" has type string (use a timestamp or int64 field)`},
		{"nullable time field", func(s *Schema) { s.Fields[6].Nullable = true }, `stream "transactions": timestamp field "ts" cannot be nullable (every event needs an event time)`},
		{"time field default", func(s *Schema) { s.Fields[6].Default = int64(0) }, `stream "transactions": timestamp field "ts" cannot have a default (every event must carry its event time)`},
		{"bad unit", func(s *Schema) { s.TimeUnit = "ns" }, `stream "transactions": unknown timestamp_unit "ns" (use s, ms or us)`},
		{"missing key field", func(s *Schema) { s.KeyFields = []string{"user"} }, `stream "transactions": key field "user" is not in the schema (add it, or fix key_fields)`},
		{"key field twice", func(s *Schema) { s.KeyFields = []string{"user_id", "user_id"} }, `stream "transactions": key field "user_id" is listed twice`},
		{"float key", func(s *Schema) { s.KeyFields = []string{"amount"} }, `stream "transactions": key field "amount" has type float64 (entity keys are string or int64)`},
		{"nullable key", func(s *Schema) { s.KeyFields = []string{"country"} }, `stream "transactions": key field "country" cannot be nullable (every event needs an entity key)`},
		{"key default", func(s *Schema) { s.Fields[1].Default = "anon" }, `stream "transactions": key field "user_id" cannot have a default (every event must carry its entity key)`},
		{"bad policy", func(s *Schema) { s.UnknownFields = "drop" }, `stream "transactions": unknown unknown_fields policy "drop" (use reject or ignore)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := decodeTxnSchema()
			tt.change(s)
			d, err := NewDecoder(s)
			if err == nil {
				t.Fatalf("NewDecoder = %v, want error %s", d, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n got %s\nwant %s", err, tt.want)
			}
		})
	}
	if _, err := NewDecoder(nil); err == nil {
		t.Error("NewDecoder(nil) succeeded")
	}
}

func TestNewDecoderDefaults(t *testing.T) {
	tests := []struct {
		typ  Type
		def  any
		want any
	}{
		{String, "x", "x"},
		{Bool, false, false},
		{Int64, 3, int64(3)},
		{Int64, int32(-3), int64(-3)},
		{Int64, int64(-4), int64(-4)},
		{Int64, uint64(3), int64(3)},
		{Int64, 3.0, int64(3)}, // JSON decoding gives float64
		{Float64, 2, 2.0},
		{Float64, float32(0.5), 0.5},
		{Float64, 0.25, 0.25},
		{Timestamp, int64(1_000_000), int64(1_000_000)},
		{Timestamp, 1e6, int64(1_000_000)},
		{Timestamp, "1970-01-01T00:00:01+00:00", int64(1_000_000)},
		{Timestamp, "1969-12-31T23:59:59.0000001Z", int64(-1_000_000)},
		{Timestamp, time.Unix(1, 0), int64(1_000_000)},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %T", tt.typ, tt.def), func(t *testing.T) {
			s := decodeTxnSchema()
			s.Fields = append(s.Fields, Field{Name: "extra", Type: tt.typ, Default: tt.def})
			ev, err := mustNewDecoder(t, s).Decode([]byte(`{"txn_id":"t","user_id":"u","merchant_id":"m","amount":1,"ts":0}`))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got := ev.Values[7]; got != tt.want {
				t.Errorf("default = %v (%T), want %v (%T)", got, got, tt.want, tt.want)
			}
		})
	}
	for _, bad := range []any{uint64(math.MaxUint64), 1e300, "1", true} {
		if _, err := normalizeDefault(Int64, bad); err == nil {
			t.Errorf("normalizeDefault(int64, %v) succeeded", bad)
		}
	}
}

func TestDecoderKeepsCopyOfSchema(t *testing.T) {
	s := decodeTxnSchema()
	d := mustNewDecoder(t, s)
	s.Fields[0].Name = "changed"
	s.KeyFields[0] = "merchant_id"
	if got := d.Schema().Fields[0].Name; got != "txn_id" {
		t.Errorf("Schema().Fields[0].Name = %q after changing the original", got)
	}
	ev, err := d.Decode([]byte(`{"txn_id":"t","user_id":"u","merchant_id":"m","amount":1,"ts":0}`))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if got := d.Key(ev); got != "u" {
		t.Errorf("Key = %q, want u", got)
	}
}

func TestKey(t *testing.T) {
	tests := []struct {
		name   string
		fields []Field
		keys   []string
		json   string
		want   string
	}{
		{"string", []Field{{Name: "user", Type: String}}, []string{"user"}, `{"user":"u|1"}`, "u|1"},
		{"int64", []Field{{Name: "user", Type: Int64}}, []string{"user"}, `{"user":-42}`, "-42"},
		{"int64 exponent", []Field{{Name: "user", Type: Int64}}, []string{"user"}, `{"user":4e2}`, "400"},
		{"composite", []Field{{Name: "a", Type: String}, {Name: "b", Type: Int64}}, []string{"a", "b"}, `{"b":7,"a":"x"}`, "x|7"},
		{"composite escaped", []Field{{Name: "a", Type: String}, {Name: "b", Type: String}}, []string{"a", "b"},
			`{"a":"p|q","b":"r\\s"}`, `p\|q|r\\s`},
		{"composite order", []Field{{Name: "a", Type: String}, {Name: "b", Type: String}}, []string{"b", "a"}, `{"a":"1","b":"2"}`, "2|1"},
		{"no key", []Field{{Name: "a", Type: String}}, nil, `{"a":"1"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Schema{Stream: "x", TimeField: "ts", KeyFields: tt.keys,
				Fields: append(tt.fields, Field{Name: "ts", Type: Timestamp})}
			d := mustNewDecoder(t, s)
			ev, err := d.Decode([]byte(strings.TrimSuffix(tt.json, "}") + `,"ts":0}`))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got := d.Key(ev); got != tt.want {
				t.Errorf("Key = %q, want %q", got, tt.want)
			}
			if got := s.Key(ev); got != tt.want {
				t.Errorf("Schema.Key = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestInt64TimeField(t *testing.T) {
	s := &Schema{Stream: "x", TimeField: "at", TimeUnit: Seconds, KeyFields: []string{"id"},
		Fields: []Field{{Name: "id", Type: Int64}, {Name: "at", Type: Int64}}}
	d := mustNewDecoder(t, s)
	ev, err := d.Decode([]byte(`{"id":5,"at":1714566600}`))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	want := &Event{Time: rfcMicros("2024-05-01T12:30:00Z"), Values: []any{int64(5), int64(1714566600)}}
	if diff := cmp.Diff(want, ev); diff != "" {
		t.Errorf("event (-want +got):\n%s", diff)
	}
	_, err = d.Decode([]byte(`{"id":5,"at":1714566600000}`))
	if want := `stream "x": field "at": timestamp 1714566600000 (s) is outside 1900..2200 (check timestamp_unit)`; err == nil || err.Error() != want {
		t.Errorf("Decode error = %v, want %s", err, want)
	}
	_, err = d.Decode([]byte(`{"id":5,"at":"2024-05-01T12:30:00Z"}`))
	if want := `stream "x": field "at": expected int64, got string "2024-05-01T12:30:00Z"`; err == nil || err.Error() != want {
		t.Errorf("Decode error = %v, want %s", err, want)
	}
}

func TestDecodeConcurrent(t *testing.T) {
	d := mustNewDecoder(t, decodeTxnSchema())
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				user := fmt.Sprintf("u%d-%d", g, i)
				ev, err := d.Decode(decodeBenchEvent(user, float64(i)))
				switch {
				case err != nil:
					errs <- err
					return
				case d.Key(ev) != user || ev.Values[3] != float64(i):
					errs <- fmt.Errorf("decoded %v, want user %s amount %d", ev.Values, user, i)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func decodeBenchEvent(user string, amount float64) []byte {
	return fmt.Appendf(nil, `{"txn_id":"txn-000000000184467","user_id":%q,"merchant_id":"merchant-00042",`+
		`"amount":%g,"country":"DE","is_fraud":false,"ts":"2024-05-01T12:30:00.123Z","_event_id":"2fLOkq2SDAwVZv1HDRqXbmfqp3s"}`,
		user, amount)
}

func BenchmarkDecode(b *testing.B) {
	d := mustNewDecoder(b, decodeTxnSchema())
	data := decodeBenchEvent("user-0001234567", 1234.56)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, err := d.Decode(data); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

func ExampleDecoder_Decode() {
	d, err := NewDecoder(&Schema{
		Stream:    "transactions",
		TimeField: "ts",
		KeyFields: []string{"user_id"},
		Fields: []Field{
			{Name: "user_id", Type: String},
			{Name: "amount", Type: Float64},
			{Name: "ts", Type: Timestamp},
		},
	})
	if err != nil {
		panic(err)
	}
	ev, err := d.Decode([]byte(`{"user_id":"u1","amount":12.5,"ts":"2024-05-01T14:30:00+02:00"}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(d.Key(ev), ev.Values[1], time.UnixMicro(ev.Time).UTC().Format(time.RFC3339))

	_, err = d.Decode([]byte(`{"user_id":"u1","amount":"12,5","ts":1714566600000}`))
	fmt.Println(err)
	// Output:
	// u1 12.5 2024-05-01T12:30:00Z
	// stream "transactions": field "amount": expected float64, got string "12,5"
}
