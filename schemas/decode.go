package schemas

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/valyala/fastjson"
)

// MaxStringBytes bounds the value of a string field, in bytes after JSON
// unescaping.
const MaxStringBytes = 64 << 10

// The range of valid timestamps, in microseconds since the Unix epoch:
// [1900-01-01T00:00:00Z, 2200-01-01T00:00:00Z). A timestamp outside it is
// almost always an integer in the wrong unit.
const (
	MinTimestamp int64 = -2_208_988_800_000_000
	MaxTimestamp int64 = 7_258_118_400_000_000
)

// pooledInputBytes is the largest input whose parser goes back to the pool;
// parsers that held bigger documents are dropped so the pool stays small.
const pooledInputBytes = 1 << 20

// excerptBytes bounds how much of a bad value an error message quotes.
const excerptBytes = 40

// Decoder decodes and validates the JSON events of one schema. It is safe for
// concurrent use.
type Decoder struct {
	schema        *Schema
	fields        []fieldPlan
	index         map[string]int
	timeIdx       int
	keyIdx        []int
	unit          TimeUnit // never empty
	unitMicros    int64
	ignoreUnknown bool
	states        sync.Pool // of *decodeState
}

// fieldPlan is what the decoder needs to know about one schema field.
type fieldPlan struct {
	name     string
	typ      Type
	nullable bool
	def      any // the default in its Go form, nil when the field has none
	isTime   bool
	isKey    bool
}

// decodeState is the per-call scratch space, pooled between calls.
type decodeState struct {
	parser  fastjson.Parser
	slots   []*fastjson.Value // the JSON value of each schema field, nil if absent
	unknown [][]byte          // names of ignored unknown fields
	num     []byte            // the text of the number being read
}

// NewDecoder checks s and returns a decoder for its events. The decoder keeps
// a copy of s; later changes to s do not affect it.
func NewDecoder(s *Schema) (*Decoder, error) {
	if s == nil {
		return nil, errors.New("new decoder: nil schema")
	}
	if s.Stream == "" {
		return nil, errors.New("new decoder: the schema has no stream name")
	}
	d := &Decoder{schema: cloneSchema(s), index: make(map[string]int, len(s.Fields))}
	for _, plan := range []func() error{d.planFields, d.planTime, d.planKey} {
		if err := plan(); err != nil {
			return nil, fmt.Errorf("stream %q: %w", s.Stream, err)
		}
	}
	switch s.UnknownFields {
	case "", RejectUnknown:
	case IgnoreUnknown:
		d.ignoreUnknown = true
	default:
		return nil, fmt.Errorf("stream %q: unknown unknown_fields policy %q (use reject or ignore)",
			s.Stream, string(s.UnknownFields))
	}
	return d, nil
}

func cloneSchema(s *Schema) *Schema {
	c := *s
	c.Fields = slices.Clone(s.Fields)
	c.KeyFields = slices.Clone(s.KeyFields)
	return &c
}

func (d *Decoder) planFields() error {
	d.fields = make([]fieldPlan, len(d.schema.Fields))
	for i, f := range d.schema.Fields {
		switch {
		case f.Name == "":
			return fmt.Errorf("field %d has no name", i+1)
		case strings.HasPrefix(f.Name, ReservedPrefix):
			return fmt.Errorf("field %q: names starting with %q are reserved (rename the field)",
				f.Name, ReservedPrefix)
		case f.Type < String || f.Type > Timestamp:
			return fmt.Errorf("field %q: unknown type %s (use one of string, int64, float64, bool, timestamp)",
				f.Name, f.Type)
		}
		if _, dup := d.index[f.Name]; dup {
			return fmt.Errorf("field %q is declared twice", f.Name)
		}
		d.index[f.Name] = i
		def, err := normalizeDefault(f.Type, f.Default)
		if err != nil {
			return fmt.Errorf("field %q: %w", f.Name, err)
		}
		d.fields[i] = fieldPlan{name: f.Name, typ: f.Type, nullable: f.Nullable, def: def}
	}
	return nil
}

func (d *Decoder) planTime() error {
	s := d.schema
	micros, err := s.TimeUnit.Micros()
	if err != nil {
		return err
	}
	d.unitMicros = micros
	d.unit = s.TimeUnit
	if d.unit == "" {
		d.unit = Milliseconds
	}
	if s.TimeField == "" {
		return errors.New("no timestamp field (set timestamp to the field that holds the event time)")
	}
	i, ok := d.index[s.TimeField]
	if !ok {
		return fmt.Errorf("timestamp field %q is not in the schema (add it, or name another field)", s.TimeField)
	}
	f := &d.fields[i]
	switch {
	case f.typ != Timestamp && f.typ != Int64:
		return fmt.Errorf("timestamp field %q has type %s (use a timestamp or int64 field)", f.name, f.typ)
	case f.nullable:
		return fmt.Errorf("timestamp field %q cannot be nullable (every event needs an event time)", f.name)
	case f.def != nil:
		return fmt.Errorf("timestamp field %q cannot have a default (every event must carry its event time)", f.name)
	}
	f.isTime = true
	d.timeIdx = i
	return nil
}

func (d *Decoder) planKey() error {
	for _, name := range d.schema.KeyFields {
		i, ok := d.index[name]
		if !ok {
			return fmt.Errorf("key field %q is not in the schema (add it, or fix key_fields)", name)
		}
		f := &d.fields[i]
		switch {
		case f.isKey:
			return fmt.Errorf("key field %q is listed twice", name)
		case f.typ != String && f.typ != Int64:
			return fmt.Errorf("key field %q has type %s (entity keys are string or int64)", name, f.typ)
		case f.nullable:
			return fmt.Errorf("key field %q cannot be nullable (every event needs an entity key)", name)
		case f.def != nil:
			return fmt.Errorf("key field %q cannot have a default (every event must carry its entity key)", name)
		}
		f.isKey = true
		d.keyIdx = append(d.keyIdx, i)
	}
	return nil
}

// normalizeDefault returns a field's default in its Go form. It accepts the
// forms YAML and JSON decoders produce: an integer (see integerOf) for int64
// and timestamp (microseconds) fields, also float32 and float64 for float64
// fields, and an RFC 3339 string or a time.Time for timestamps.
func normalizeDefault(t Type, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	bad := fmt.Errorf("default %v (%T) does not match type %s", v, v, t)
	switch t {
	case String:
		if s, ok := v.(string); ok {
			return s, nil
		}
	case Bool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case Float64:
		if f, ok := v.(float64); ok {
			return f, nil
		}
		if f, ok := v.(float32); ok {
			return float64(f), nil
		}
		if n, ok := integerOf(v); ok {
			return float64(n), nil
		}
	case Int64:
		if n, ok := integerOf(v); ok {
			return n, nil
		}
	case Timestamp:
		return timestampDefault(v, bad)
	}
	return nil, bad
}

func timestampDefault(v any, bad error) (any, error) {
	var micros int64
	switch x := v.(type) {
	case string:
		m, reason := parseRFC3339([]byte(x))
		if reason != "" {
			return nil, fmt.Errorf("default %q is not an RFC 3339 timestamp: %s", x, reason)
		}
		micros = m
	case time.Time:
		micros = x.UnixMicro()
	default:
		n, ok := integerOf(v)
		if !ok {
			return nil, bad
		}
		micros = n
	}
	if micros < MinTimestamp || micros >= MaxTimestamp {
		return nil, fmt.Errorf("default timestamp %s is outside 1900..2200", time.UnixMicro(micros).UTC().Format(time.RFC3339Nano))
	}
	return micros, nil
}

// integerOf converts an int, int32, int64 or uint64, or a float64 holding
// an exact integer (what JSON decoders produce), to int64.
func integerOf(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint64:
		return int64(x), x <= math.MaxInt64
	case float64:
		return int64(x), x == math.Trunc(x) && math.Abs(x) < 1<<63
	}
	return 0, false
}

// Schema returns the schema the decoder checks events against. The caller
// must not modify it.
func (d *Decoder) Schema() *Schema { return d.schema }

// Key returns the canonical entity key of an event decoded by d; it equals
// d.Schema().Key(e).
func (d *Decoder) Key(e *Event) string {
	if len(d.keyIdx) == 1 {
		return KeyPart(e.Values[d.keyIdx[0]])
	}
	parts := make([]string, len(d.keyIdx))
	for i, idx := range d.keyIdx {
		parts[i] = KeyPart(e.Values[idx])
	}
	return JoinKey(parts)
}

// Decode decodes one event, a single JSON object, and validates it against
// the schema: strict JSON in UTF-8, each member once, every field of its
// declared type, the event time within 1900..2200 and the key fields set.
// Every error it returns is a *FieldError naming the stream and, when the
// problem is about one field, that field.
func (d *Decoder) Decode(data []byte) (*Event, error) {
	if !utf8.Valid(data) {
		return nil, d.errorf("", "invalid JSON: not valid UTF-8 at byte %d", invalidUTF8At(data))
	}
	st := d.getState()
	defer d.putState(st, len(data))
	root, err := st.parser.ParseBytes(data)
	if err == nil {
		// fastjson's parser is lenient (NaN, bad escapes, control characters);
		// its validator is strict. Parsing first bounds the nesting depth the
		// validator recurses into.
		err = fastjson.ValidateBytes(data)
	}
	if err != nil {
		return nil, d.errorf("", "%s", jsonProblem(err, data))
	}
	if at := unpairedSurrogate(data); at >= 0 {
		return nil, d.errorf("", "invalid JSON at byte %d: unpaired UTF-16 surrogate %s (write characters "+
			"beyond U+FFFF as UTF-8 or as a surrogate pair)", at, data[at:at+6])
	}
	if root.Type() != fastjson.TypeObject {
		return nil, d.errorf("", "expected a JSON object, got %s", kindOf(root))
	}
	obj, _ := root.Object()
	ev := &Event{}
	if err := d.collect(st, obj, ev); err != nil {
		return nil, err
	}
	ev.Values = make([]any, len(d.fields))
	for i := range d.fields {
		v, err := d.value(st, &d.fields[i], st.slots[i])
		if err != nil {
			return nil, err
		}
		ev.Values[i] = v
	}
	ev.Time = ev.Values[d.timeIdx].(int64)
	if d.fields[d.timeIdx].typ == Int64 {
		ev.Time *= d.unitMicros // in range: checked by value
	}
	return ev, nil
}

func (d *Decoder) getState() *decodeState {
	st, _ := d.states.Get().(*decodeState)
	if st == nil {
		st = &decodeState{slots: make([]*fastjson.Value, len(d.fields))}
	}
	return st
}

func (d *Decoder) putState(st *decodeState, inputBytes int) {
	if inputBytes > pooledInputBytes {
		return
	}
	clear(st.slots)
	clear(st.unknown)
	st.unknown = st.unknown[:0]
	d.states.Put(st)
}

// collect files the members of obj into st.slots and ev.ID, rejecting
// duplicate and unknown names.
func (d *Decoder) collect(st *decodeState, obj *fastjson.Object, ev *Event) error {
	var err error
	seenID := false
	obj.Visit(func(k []byte, v *fastjson.Value) {
		if err != nil {
			return
		}
		if i, ok := d.index[string(k)]; ok {
			if st.slots[i] != nil {
				err = d.errorf(d.fields[i].name, "the field appears twice (send each field once)")
				return
			}
			st.slots[i] = v
			return
		}
		if string(k) == EventIDField {
			if seenID {
				err = d.errorf(EventIDField, "the field appears twice (send each field once)")
				return
			}
			seenID = true
			ev.ID, err = d.eventID(v)
			return
		}
		if !d.ignoreUnknown {
			err = d.errorf(string(k), "not in the schema (add it to the schema, or set unknown_fields: ignore on the stream)")
			return
		}
		st.unknown = append(st.unknown, k)
	})
	if err != nil || len(st.unknown) < 2 {
		return err
	}
	slices.SortFunc(st.unknown, bytes.Compare)
	for i := 1; i < len(st.unknown); i++ {
		if bytes.Equal(st.unknown[i-1], st.unknown[i]) {
			return d.errorf(string(st.unknown[i]), "the field appears twice (send each field once)")
		}
	}
	return nil
}

func (d *Decoder) eventID(v *fastjson.Value) (string, error) {
	if v.Type() != fastjson.TypeString {
		return "", d.errorf(EventIDField, "expected a string of 1 to %d bytes, got %s", MaxEventIDBytes, kindOf(v))
	}
	b, _ := v.StringBytes()
	switch {
	case len(b) == 0:
		return "", d.errorf(EventIDField, "empty id (omit the field to have an id assigned)")
	case len(b) > MaxEventIDBytes:
		return "", d.errorf(EventIDField, "id of %d bytes is over the %d-byte limit", len(b), MaxEventIDBytes)
	}
	return string(b), nil
}

// value converts the JSON value of one field, nil when absent, to its Go form.
func (d *Decoder) value(st *decodeState, f *fieldPlan, v *fastjson.Value) (any, error) {
	if v == nil {
		switch {
		case f.def != nil:
			return f.def, nil
		case f.nullable:
			return nil, nil
		}
		return nil, d.errorf(f.name, "required field is missing")
	}
	if v.Type() == fastjson.TypeNull {
		switch {
		case f.nullable:
			return nil, nil
		case f.isTime:
			return nil, d.errorf(f.name, "null is not allowed (it is the event time)")
		case f.isKey:
			return nil, d.errorf(f.name, "null is not allowed (it is part of the entity key)")
		}
		return nil, d.errorf(f.name, "null is not allowed (declare nullable: true to accept it)")
	}
	switch f.typ {
	case String:
		return d.stringValue(f, v)
	case Int64:
		return d.int64Value(st, f, v)
	case Float64:
		return d.float64Value(st, f, v)
	case Bool:
		switch v.Type() {
		case fastjson.TypeTrue:
			return true, nil
		case fastjson.TypeFalse:
			return false, nil
		}
		return nil, d.mismatch(f, v, "")
	}
	return d.timestampValue(st, f, v)
}

func (d *Decoder) stringValue(f *fieldPlan, v *fastjson.Value) (any, error) {
	if v.Type() != fastjson.TypeString {
		return nil, d.mismatch(f, v, "")
	}
	b, _ := v.StringBytes()
	switch {
	case len(b) > MaxStringBytes:
		return nil, d.errorf(f.name, "string of %d bytes is over the %d-byte limit", len(b), MaxStringBytes)
	case len(b) == 0 && f.isKey:
		return nil, d.errorf(f.name, "empty string is not allowed (it is part of the entity key)")
	}
	return string(b), nil
}

func (d *Decoder) int64Value(st *decodeState, f *fieldPlan, v *fastjson.Value) (any, error) {
	n, err := d.jsonInt(st, f, v)
	if err == nil && f.isTime {
		_, err = d.intMicros(f, n)
	}
	if err != nil {
		return nil, err
	}
	return n, nil
}

// jsonInt reads a JSON number that must be an exact int64.
func (d *Decoder) jsonInt(st *decodeState, f *fieldPlan, v *fastjson.Value) (int64, error) {
	if v.Type() != fastjson.TypeNumber {
		return 0, d.mismatch(f, v, "")
	}
	st.num = v.MarshalTo(st.num[:0])
	n, problem := parseJSONInt(st.num)
	if problem != "" {
		return 0, d.mismatch(f, v, problem)
	}
	return n, nil
}

// intMicros converts an integer timestamp in the schema's unit to
// microseconds, checking its range.
func (d *Decoder) intMicros(f *fieldPlan, n int64) (int64, error) {
	if n < MinTimestamp/d.unitMicros || n >= MaxTimestamp/d.unitMicros {
		return 0, d.errorf(f.name, "timestamp %d (%s) is outside 1900..2200 (check timestamp_unit)", n, d.unit)
	}
	return n * d.unitMicros, nil
}

func (d *Decoder) float64Value(st *decodeState, f *fieldPlan, v *fastjson.Value) (any, error) {
	if v.Type() != fastjson.TypeNumber {
		return nil, d.mismatch(f, v, "")
	}
	st.num = v.MarshalTo(st.num[:0])
	x, err := strconv.ParseFloat(string(st.num), 64)
	if err != nil {
		// The validator accepted the number's syntax, so this is overflow.
		return nil, d.mismatch(f, v, "out of float64 range")
	}
	return x, nil
}

func (d *Decoder) timestampValue(st *decodeState, f *fieldPlan, v *fastjson.Value) (any, error) {
	if v.Type() != fastjson.TypeString {
		n, err := d.jsonInt(st, f, v)
		if err == nil {
			n, err = d.intMicros(f, n)
		}
		if err != nil {
			return nil, err
		}
		return n, nil
	}
	b, _ := v.StringBytes()
	micros, reason := parseRFC3339(b)
	switch {
	case reason != "":
		return nil, d.mismatch(f, v, reason)
	case micros < MinTimestamp || micros >= MaxTimestamp:
		return nil, d.errorf(f.name, "timestamp %s is outside 1900..2200 (check timestamp_unit)", b)
	}
	return micros, nil
}

// mismatch reports a value that does not fit its field's type.
func (d *Decoder) mismatch(f *fieldPlan, v *fastjson.Value, problem string) error {
	want := f.typ.String()
	if f.typ == Timestamp {
		want = "an RFC 3339 timestamp like 2024-05-01T12:30:00Z or an integer in " + string(d.unit)
	}
	if problem != "" {
		return d.errorf(f.name, "expected %s, got %s (%s)", want, kindOf(v), problem)
	}
	return d.errorf(f.name, "expected %s, got %s", want, kindOf(v))
}

func (d *Decoder) errorf(field, format string, args ...any) error {
	return &FieldError{Stream: d.schema.Stream, Field: field, Problem: fmt.Sprintf(format, args...)}
}

// kindOf names the JSON kind of v and quotes a short excerpt of it.
func kindOf(v *fastjson.Value) string {
	switch v.Type() {
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		return "string " + excerpt(string(b), true)
	case fastjson.TypeNumber:
		return "number " + excerpt(string(v.MarshalTo(nil)), false)
	case fastjson.TypeTrue:
		return "bool true"
	case fastjson.TypeFalse:
		return "bool false"
	}
	return v.Type().String() // null, object, array
}

// excerpt returns s cut to about excerptBytes bytes at a character boundary,
// quoted if asked, and marked with "..." when cut.
func excerpt(s string, quote bool) string {
	cut := len(s) > excerptBytes
	if cut {
		n := excerptBytes
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
	}
	if quote {
		s = strconv.Quote(s)
	}
	if cut {
		s += "..."
	}
	return s
}

// jsonProblem rewords a fastjson error: the innermost reason, the byte
// offset where it can be told, and an excerpt of the input from there on.
func jsonProblem(err error, data []byte) string {
	if len(bytes.TrimSpace(data)) == 0 {
		return "invalid JSON: empty input (send one JSON object)"
	}
	msg := strings.TrimPrefix(err.Error(), "cannot parse JSON: ")
	reason, quoted, ok := strings.Cut(msg, "; unparsed tail: ")
	if !ok {
		quoted, ok = strings.CutPrefix(msg, "unexpected tail: ")
		reason = "unexpected data after the object"
	}
	tail, uerr := strconv.Unquote(quoted)
	if !ok || uerr != nil {
		return "invalid JSON: " + msg
	}
	for trimmed := true; trimmed; {
		trimmed = false
		for _, p := range []string{"cannot parse object: ", "cannot parse object value: ",
			"cannot parse array: ", "cannot parse array value: "} {
			if r, ok := strings.CutPrefix(reason, p); ok {
				reason, trimmed = r, true
			}
		}
	}
	near := "at the end of the input"
	if tail != "" {
		near = "near " + excerpt(tail, true)
	}
	// fastjson quotes tails of up to 80 bytes whole, longer ones cut.
	if len(tail) <= 80 {
		return fmt.Sprintf("invalid JSON at byte %d: %s (%s)", len(data)-len(tail), reason, near)
	}
	return fmt.Sprintf("invalid JSON: %s (%s)", reason, near)
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

// parseRFC3339 reads an RFC 3339 timestamp, such as 2024-05-01T12:30:00.25+02:00,
// as microseconds since the Unix epoch. It accepts 't' or a space for 'T',
// 'z' for 'Z', and up to nine fractional digits, truncated to microseconds.
// On failure it returns a short reason.
func parseRFC3339(b []byte) (int64, string) {
	const layout = "not RFC 3339, like 2024-05-01T12:30:00Z"
	if len(b) < len("2006-01-02T15:04:05") || b[4] != '-' || b[7] != '-' || b[13] != ':' || b[16] != ':' ||
		(b[10] != 'T' && b[10] != 't' && b[10] != ' ') {
		return 0, layout
	}
	year, ok1 := digits(b[0:4])
	month, ok2 := digits(b[5:7])
	day, ok3 := digits(b[8:10])
	hour, ok4 := digits(b[11:13])
	minute, ok5 := digits(b[14:16])
	sec, ok6 := digits(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) {
		return 0, layout
	}
	switch {
	case month < 1 || month > 12:
		return 0, "month out of range"
	case day < 1 || day > daysIn(year, month):
		return 0, "day out of range"
	case hour > 23:
		return 0, "hour out of range"
	case minute > 59:
		return 0, "minute out of range"
	case sec > 59:
		return 0, "second out of range"
	}
	rest := b[19:]
	var frac int64 // microseconds
	if len(rest) > 0 && rest[0] == '.' {
		n := 1
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			if n <= 6 {
				frac = frac*10 + int64(rest[n]-'0')
			}
			n++
		}
		switch {
		case n == 1:
			return 0, layout
		case n > 10:
			return 0, "more than 9 fractional digits"
		}
		for i := n; i <= 6; i++ {
			frac *= 10
		}
		rest = rest[n:]
	}
	offset, reason := parseOffset(rest)
	if reason != "" {
		return 0, reason
	}
	secs := daysFromCivil(year, month, day)*86400 + int64(hour*3600+minute*60+sec) - offset
	return secs*1_000_000 + frac, ""
}

// parseOffset reads the zone of an RFC 3339 timestamp, Z or ±hh:mm, as
// seconds east of UTC.
func parseOffset(b []byte) (int64, string) {
	if len(b) == 1 && (b[0] == 'Z' || b[0] == 'z') {
		return 0, ""
	}
	if len(b) != len("+07:00") || (b[0] != '+' && b[0] != '-') || b[3] != ':' {
		return 0, "not RFC 3339, like 2024-05-01T12:30:00Z (the zone is Z or +hh:mm)"
	}
	h, ok1 := digits(b[1:3])
	m, ok2 := digits(b[4:6])
	if !ok1 || !ok2 || h > 23 || m > 59 {
		return 0, "zone offset out of range"
	}
	off := int64(h*3600 + m*60)
	if b[0] == '-' {
		off = -off
	}
	return off, ""
}

// digits reads a fixed-width unsigned decimal number.
func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the number of days from 1970-01-01 to the given date
// of the proleptic Gregorian calendar.
func daysFromCivil(year, month, day int) int64 {
	y := int64(year)
	if month <= 2 {
		y--
	}
	era := y / 400
	if y < 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400                     // [0, 399]
	mp := int64((month + 9) % 12)          // March is 0
	doy := (153*mp+2)/5 + int64(day) - 1   // [0, 365]
	doe := yoe*365 + yoe/4 - yoe/100 + doy // [0, 146096]
	return era*146097 + doe - 719468
}
