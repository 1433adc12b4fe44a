package schemas

import (
	"fmt"
	"strings"
)

// Type is the type of a schema field.
type Type uint8

// The field types of a stream schema.
const (
	String Type = iota + 1
	Int64
	Float64
	Bool
	Timestamp // microseconds since the Unix epoch, UTC
)

var typeNames = map[Type]string{
	String:    "string",
	Int64:     "int64",
	Float64:   "float64",
	Bool:      "bool",
	Timestamp: "timestamp",
}

// String returns the name used in feature repositories.
func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// ParseType parses a type name of the feature repository format.
func ParseType(s string) (Type, error) {
	for t, n := range typeNames {
		if n == s {
			return t, nil
		}
	}
	return 0, fmt.Errorf("unknown type %q (use one of string, int64, float64, bool, timestamp)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (t Type) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (t *Type) UnmarshalText(b []byte) error {
	v, err := ParseType(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// TimeUnit is the unit of integer timestamps.
type TimeUnit string

// Units of integer timestamps.
const (
	Seconds      TimeUnit = "s"
	Milliseconds TimeUnit = "ms"
	Microseconds TimeUnit = "us"
)

// Micros returns how many microseconds one unit holds.
func (u TimeUnit) Micros() (int64, error) {
	switch u {
	case Seconds:
		return 1_000_000, nil
	case Milliseconds, "":
		return 1_000, nil
	case Microseconds:
		return 1, nil
	}
	return 0, fmt.Errorf("unknown timestamp_unit %q (use s, ms or us)", string(u))
}

// UnknownFields says what the decoder does with fields the schema lacks.
type UnknownFields string

// Policies for unknown fields.
const (
	RejectUnknown UnknownFields = "reject"
	IgnoreUnknown UnknownFields = "ignore"
)

// Field is one field of a stream schema.
type Field struct {
	Name     string `json:"name"`
	Type     Type   `json:"type"`
	Nullable bool   `json:"nullable,omitempty"`
	// Default is the value taken when the field is absent, in its Go form
	// (see Event.Values). A field with a default may be omitted by producers.
	Default any `json:"default,omitempty"`
}

// Schema is the schema of one stream: its fields and how to read event time
// and the entity key from them.
type Schema struct {
	Stream        string        `json:"stream"`
	Version       int           `json:"version"`
	Fields        []Field       `json:"fields"`
	TimeField     string        `json:"timestamp"`
	TimeUnit      TimeUnit      `json:"timestamp_unit,omitempty"`
	UnknownFields UnknownFields `json:"unknown_fields,omitempty"`
	// KeyFields are the fields that make up the entity key, in the entity's
	// order. The key of an event is KeyOf(values of these fields).
	KeyFields []string `json:"key_fields"`
}

// Index returns the position of the named field, or -1.
func (s *Schema) Index(name string) int {
	for i := range s.Fields {
		if s.Fields[i].Name == name {
			return i
		}
	}
	return -1
}

// ReservedPrefix starts the names Sluice reserves for its own columns
// (_event_id, _event_time, ...). Schema fields may not use it.
const ReservedPrefix = "_"

// EventIDField is the reserved JSON field a producer may set to choose an
// event's id.
const EventIDField = "_event_id"

// MaxEventIDBytes bounds the length of a producer-chosen event id.
const MaxEventIDBytes = 64

// FieldError is a validation error about one field of one event.
type FieldError struct {
	Stream  string
	Field   string
	Problem string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.Stream != "" {
		fmt.Fprintf(&b, "stream %q: ", e.Stream)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, "field %q: ", e.Field)
	}
	b.WriteString(e.Problem)
	return b.String()
}
