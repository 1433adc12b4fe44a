package schemas

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// timestampExample shows the form of an RFC 3339 timestamp in error messages.
const timestampExample = "2024-05-01T12:30:00Z"

// parseTimestamp reads an RFC 3339 timestamp with up to nine fractional
// digits, such as 2024-05-01T12:30:00.25+02:00, as microseconds since the
// Unix epoch. Digits past the microsecond are dropped toward the past, before
// 1970 as after: 1969-12-31T23:59:59.9999999Z is -1. When s is not such a
// timestamp, ok is false and problem says why, or is "" when showing the
// expected form says enough.
func parseTimestamp(s string) (micros int64, problem string, ok bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, parseProblem(err), false
	}
	if problem := beyondRFC3339(s); problem != "" {
		return 0, problem, false
	}
	// UnixMicro rounds down: it counts whole seconds since the epoch, rounded
	// down, plus the never negative microseconds within the second.
	return t.UnixMicro(), "", true
}

// parseProblem turns an error of time.Parse into a short reason, or "".
func parseProblem(err error) string {
	var pe *time.ParseError
	switch {
	case !errors.As(err, &pe):
		return ""
	case strings.HasSuffix(pe.Message, " out of range"): // day out of range, ...
		return strings.TrimPrefix(pe.Message, ": ")
	case pe.Message != "": // extra text after the zone, quoted whole: too long to repeat
		return "unexpected text after the zone"
	case pe.LayoutElem != "Z07:00":
		return ""
	case pe.ValueElem == "":
		return "no zone: end with Z or an offset like +02:00"
	}
	return fmt.Sprintf("zone %s is not Z or an offset like +02:00", excerpt(pe.ValueElem, true))
}

// beyondRFC3339 returns why s, which time.Parse read as time.RFC3339Nano, is
// still refused, or "". Parse also takes a one-digit hour, a comma before the
// fraction, zone offsets of 24 hours or 60 minutes, and any number of
// fractional digits.
func beyondRFC3339(s string) string {
	if s[len("2006-01-02T15")] != ':' {
		return "write the hour with two digits"
	}
	zone := len(s) - len("Z")
	if s[zone] != 'Z' {
		zone = len(s) - len("+07:00")
		if s[zone+1:zone+3] > "23" || s[zone+4:] > "59" { // two digits each
			return "zone offset out of range"
		}
	}
	switch frac := s[len("2006-01-02T15:04:05"):zone]; {
	case strings.HasPrefix(frac, ","):
		return "write the fraction of a second after '.', not ','"
	case len(frac) > len(".999999999"):
		return "more than 9 fractional digits"
	}
	return ""
}

// unpairedSurrogate returns the offset of the first \u escape of a UTF-16
// surrogate that is not half of a pair, or -1. fastjson would keep such an
// escape as literal text. data must be valid JSON, where every backslash
// starts an escape inside a string.
func unpairedSurrogate(data []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(data[i:], '\\')
		if j < 0 {
			return -1
		}
		i += j
		if data[i+1] != 'u' {
			i += 2
			continue
		}
		r, _ := strconv.ParseUint(string(data[i+2:i+6]), 16, 16)
		switch {
		case r < 0xD800 || r > 0xDFFF:
			i += 6
		case r <= 0xDBFF && len(data) >= i+12 && data[i+6] == '\\' && data[i+7] == 'u':
			low, _ := strconv.ParseUint(string(data[i+8:i+12]), 16, 16)
			if low < 0xDC00 || low > 0xDFFF {
				return i
			}
			i += 12
		default:
			return i
		}
	}
}

// invalidUTF8At returns the offset of the first byte of b that does not
// start a valid UTF-8 sequence, or len(b).
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return len(b)
}

// parseJSONInt reads the text of a valid JSON number as an exact int64. It
// accepts exponent forms whose value is an integer (1e3, 1.5e3, 1500e-2) but
// no plain decimal point (3.0). On failure it returns a short reason.
func parseJSONInt(num []byte) (int64, string) {
	neg := num[0] == '-'
	if neg {
		num = num[1:]
	}
	intEnd := digitsEnd(num)
	mant, rest := num[:intEnd], num[intEnd:]
	var fracDigits int
	if len(rest) > 0 && rest[0] == '.' {
		fracDigits = digitsEnd(rest[1:])
		if len(rest) == 1+fracDigits { // no exponent
			return 0, "an int64 is written without a decimal point"
		}
		// The digits are contiguous but for the '.': join them.
		mant = append(append([]byte(nil), mant...), rest[1:1+fracDigits]...)
		rest = rest[1+fracDigits:]
	}
	exp := -int64(fracDigits)
	if len(rest) > 0 { // e or E, then an optional sign and digits
		rest = rest[1:]
		expNeg := rest[0] == '-'
		if rest[0] == '-' || rest[0] == '+' {
			rest = rest[1:]
		}
		var e int64
		for _, c := range rest {
			if e < 1e15 { // saturate: no input has this many digits
				e = e*10 + int64(c-'0')
			}
		}
		if expNeg {
			e = -e
		}
		exp += e
	}
	return exactInt(neg, bytes.TrimLeft(mant, "0"), exp)
}

// exactInt returns ±digits×10^exp as an int64, where digits has no leading
// zeros, or a reason it is not one.
func exactInt(neg bool, digits []byte, exp int64) (int64, string) {
	if len(digits) == 0 {
		return 0, ""
	}
	if exp < 0 {
		zeros := len(digits) - len(bytes.TrimRight(digits, "0"))
		if int64(zeros) < -exp {
			return 0, "not an integer"
		}
		digits, exp = digits[:len(digits)+int(exp)], 0
	}
	if int64(len(digits))+exp > 19 {
		return 0, "out of int64 range"
	}
	var u uint64 // at most 19 digits: no overflow
	for _, c := range digits {
		u = u*10 + uint64(c-'0')
	}
	for range exp {
		u *= 10
	}
	switch {
	case neg && u <= 1<<63:
		return -int64(u), "" // -(1<<63) wraps to math.MinInt64, as wanted
	case !neg && u <= math.MaxInt64:
		return int64(u), ""
	}
	return 0, "out of int64 range"
}

func digitsEnd(b []byte) int {
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		n++
	}
	return n
}
