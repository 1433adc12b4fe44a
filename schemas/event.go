package schemas

import (
	"strconv"
	"strings"
)

// Event is one decoded, validated event.
type Event struct {
	// ID is the producer-chosen id from the reserved field _event_id, or "".
	ID string
	// Time is the event time in microseconds since the Unix epoch, UTC.
	Time int64
	// Values holds one value per schema field, in schema order: string,
	// int64, float64, bool, or int64 microseconds for timestamps; nil is null.
	Values []any
}

// Key returns the canonical entity key of an event decoded with s.
func (s *Schema) Key(e *Event) string {
	if len(s.KeyFields) == 1 {
		return KeyPart(e.Values[s.Index(s.KeyFields[0])])
	}
	parts := make([]string, len(s.KeyFields))
	for i, f := range s.KeyFields {
		parts[i] = KeyPart(e.Values[s.Index(f)])
	}
	return JoinKey(parts)
}

// KeyPart renders one key value in its canonical string form.
func KeyPart(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case nil:
		return ""
	}
	return ""
}

// JoinKey joins the parts of a composite key canonically: a single part is
// itself; several are joined with '|', where '|' and '\' inside a part are
// escaped with '\'.
func JoinKey(parts []string) string {
	if len(parts) == 1 {
		return parts[0]
	}
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteByte('|')
		}
		for j := 0; j < len(p); j++ {
			if p[j] == '|' || p[j] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(p[j])
		}
	}
	return b.String()
}
