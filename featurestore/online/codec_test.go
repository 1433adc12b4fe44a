package online

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sluicehq/sluice/featurestore/window"
)

// bitwise compares floats by their bits, so NaN equals the same NaN and -0
// differs from +0.
var bitwise = cmp.Comparer(func(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) })

// codecCases are events whose stored form must read back exactly.
var codecCases = []struct {
	name string
	ev   window.Event
}{
	{"no values", window.Event{Arrival: 1}},
	{"null", window.Event{Arrival: 5, Values: []any{nil}}},
	{"empty string", window.Event{Values: []any{""}}},
	{"strings", window.Event{Values: []any{"u1", "héllo wörld", "a\x00b", "|\\", string(bytes.Repeat([]byte("x"), 300))}}},
	{"ints", window.Event{Values: []any{int64(0), int64(-1), int64(1), int64(-300), int64(math.MaxInt64), int64(math.MinInt64)}}},
	{"floats", window.Event{Values: []any{0.0, math.Copysign(0, -1), -1.5, 12.25, math.SmallestNonzeroFloat64, math.MaxFloat64}}},
	{"non-finite floats", window.Event{Values: []any{math.NaN(), math.Inf(1), math.Inf(-1)}}},
	{"bools", window.Event{Values: []any{true, false}}},
	{"mixed with nulls", window.Event{Arrival: 1767225600000000, Values: []any{nil, "m1", nil, int64(7), 3.5, true, nil}}},
	{"negative arrival", window.Event{Arrival: -86400000000, Values: []any{"x"}}},
	{"extreme arrivals min", window.Event{Arrival: math.MinInt64, Values: []any{false}}},
	{"extreme arrivals max", window.Event{Arrival: math.MaxInt64, Values: []any{nil}}},
}

func TestCodecRoundTrip(t *testing.T) {
	for _, tc := range codecCases {
		t.Run(tc.name, func(t *testing.T) {
			b := encodeEvent(nil, &tc.ev)
			// Time and Seq live in the key; the value must not depend on them.
			got := window.Event{Time: 42, Seq: 9}
			if err := decodeEvent(b, &got); err != nil {
				t.Fatalf("decodeEvent(encodeEvent(%v)): %v", tc.ev, err)
			}
			want := tc.ev
			want.Time, want.Seq = 42, 9
			if diff := cmp.Diff(want, got, bitwise, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEncodeEventAppends(t *testing.T) {
	ev := window.Event{Arrival: 3, Values: []any{"a", int64(2)}}
	alone := encodeEvent(nil, &ev)
	got := encodeEvent([]byte("prefix"), &ev)
	if want := append([]byte("prefix"), alone...); !bytes.Equal(got, want) {
		t.Errorf("encodeEvent(prefix) = %q, want %q", got, want)
	}
}

func TestDecodeEventTruncated(t *testing.T) {
	for _, tc := range codecCases {
		b := encodeEvent(nil, &tc.ev)
		for n := range len(b) {
			var ev window.Event
			if err := decodeEvent(b[:n], &ev); !errors.Is(err, window.ErrCorrupt) {
				t.Errorf("%s: decodeEvent of the first %d of %d bytes: err = %v, want window.ErrCorrupt", tc.name, n, len(b), err)
			}
		}
	}
}

func TestDecodeEventCorrupt(t *testing.T) {
	valid := encodeEvent(nil, &window.Event{Arrival: 1, Values: []any{"abc", int64(5)}})
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"arrival varint overflows", bytes.Repeat([]byte{0xff}, 11)},
		{"count varint overflows", append([]byte{0x02}, bytes.Repeat([]byte{0xff}, 11)...)},
		{"count larger than input", []byte{0x02, 0x7f, byte(tagNull)}},
		{"count max uint64", binary.AppendUvarint([]byte{0x02}, math.MaxUint64)},
		{"unknown tag", []byte{0x02, 0x01, 0x09}},
		{"tag just past the known ones", []byte{0x02, 0x01, tagFalse + 1}},
		{"string length past end", []byte{0x02, 0x01, byte(tagString), 0x05, 'a', 'b'}},
		{"string length max uint64", binary.AppendUvarint([]byte{0x02, 0x01, byte(tagString)}, math.MaxUint64)},
		{"string length overflows int", binary.AppendUvarint([]byte{0x02, 0x01, byte(tagString)}, 1<<63)},
		{"int varint overflows", append([]byte{0x02, 0x01, byte(tagInt)}, bytes.Repeat([]byte{0x80}, 11)...)},
		{"float short", []byte{0x02, 0x01, byte(tagFloat), 1, 2, 3, 4, 5, 6, 7}},
		{"second value missing", valid[:len(valid)-2]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ev window.Event
			if err := decodeEvent(tc.in, &ev); !errors.Is(err, window.ErrCorrupt) {
				t.Errorf("decodeEvent(%x): err = %v, want window.ErrCorrupt", tc.in, err)
			}
		})
	}
}

// A stored value longer than the record it encodes is corrupt: silently
// ignoring the tail hides damage (or a format mismatch) that the store should
// report.
func TestDecodeEventRejectsTrailingBytes(t *testing.T) {
	b := encodeEvent(nil, &window.Event{Arrival: 1, Values: []any{int64(5)}})
	b = append(b, byte(tagString), 0x03, 'x', 'y', 'z')
	var ev window.Event
	if err := decodeEvent(b, &ev); !errors.Is(err, window.ErrCorrupt) {
		t.Errorf("decodeEvent with 5 trailing bytes: err = %v, values %v; want window.ErrCorrupt", err, ev.Values)
	}
}

func FuzzDecodeEvent(f *testing.F) {
	for _, tc := range codecCases {
		f.Add(encodeEvent(nil, &tc.ev))
	}
	f.Add([]byte{})
	f.Add([]byte{0x02, 0x7f})
	f.Add(binary.AppendUvarint([]byte{0x02, 0x01, byte(tagString)}, math.MaxUint64))
	f.Fuzz(func(t *testing.T, b []byte) {
		var ev window.Event
		if err := decodeEvent(b, &ev); err != nil {
			if !errors.Is(err, window.ErrCorrupt) {
				t.Fatalf("decodeEvent(%x): err = %v, want window.ErrCorrupt", b, err)
			}
			return
		}
		if len(ev.Values) > len(b) {
			t.Fatalf("decodeEvent(%x): %d values from %d bytes", b, len(ev.Values), len(b))
		}
		for i, v := range ev.Values {
			switch v.(type) {
			case nil, string, int64, float64, bool:
			default:
				t.Fatalf("decodeEvent(%x): value %d has type %T", b, i, v)
			}
		}
		// What decodes must encode to a record that decodes to the same.
		again := window.Event{}
		if err := decodeEvent(encodeEvent(nil, &ev), &again); err != nil {
			t.Fatalf("re-decode of %v: %v", ev, err)
		}
		if diff := cmp.Diff(ev, again, bitwise, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("re-decode of %x (-first +second):\n%s", b, diff)
		}
	})
}

// The value tags of window.AppendValue: a stored format, so a test may
// spell them out.
const (
	tagNull byte = iota
	tagString
	tagInt
	tagFloat
	tagTrue
	tagFalse
)
