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
		m, problem, ok := parseTimestamp(x)
		if !ok {
			if problem != "" {
				problem = " (" + problem + ")"
			}
			return nil, fmt.Errorf("default %q is not an RFC 3339 timestamp like %s%s", x, timestampExample, problem)
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
	micros, problem, ok := parseTimestamp(string(b))
	switch {
	case !ok:
		return nil, d.mismatch(f, v, problem)
	case micros < MinTimestamp || micros >= MaxTimestamp:
		return nil, d.errorf(f.name, "timestamp %s is outside 1900..2200 (check timestamp_unit)", b)
	}
	return micros, nil
}

// mismatch reports a value that does not fit its field's type.
func (d *Decoder) mismatch(f *fieldPlan, v *fastjson.Value, problem string) error {
	want := f.typ.String()
	if f.typ == Timestamp {
		want = "an RFC 3339 timestamp like " + timestampExample + " or an integer in " + string(d.unit)
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
