package online

import (
	"encoding/binary"
	"errors"
	"math"

	"github.com/sluicehq/sluice/featurestore/window"
)

// Value tags of the event encoding.
const (
	tagNull byte = iota
	tagString
	tagInt
	tagFloat
	tagTrue
	tagFalse
)

var errCorrupt = errors.New("online store: corrupt event record")

// encodeEvent appends the stored form of an event's arrival time and values.
func encodeEvent(dst []byte, e *window.Event) []byte {
	dst = binary.AppendVarint(dst, e.Arrival)
	dst = binary.AppendUvarint(dst, uint64(len(e.Values)))
	for _, v := range e.Values {
		switch x := v.(type) {
		case string:
			dst = append(dst, tagString)
			dst = binary.AppendUvarint(dst, uint64(len(x)))
			dst = append(dst, x...)
		case int64:
			dst = append(dst, tagInt)
			dst = binary.AppendVarint(dst, x)
		case float64:
			dst = append(dst, tagFloat)
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(x))
		case bool:
			if x {
				dst = append(dst, tagTrue)
			} else {
				dst = append(dst, tagFalse)
			}
		default:
			dst = append(dst, tagNull)
		}
	}
	return dst
}

// decodeEvent reads what encodeEvent wrote into e.
func decodeEvent(b []byte, e *window.Event) error {
	arr, n := binary.Varint(b)
	if n <= 0 {
		return errCorrupt
	}
	b = b[n:]
	cnt, n := binary.Uvarint(b)
	if n <= 0 || cnt > uint64(len(b)) {
		return errCorrupt
	}
	b = b[n:]
	e.Arrival = arr
	e.Values = make([]any, cnt)
	for i := range e.Values {
		if len(b) == 0 {
			return errCorrupt
		}
		tag := b[0]
		b = b[1:]
		switch tag {
		case tagNull:
		case tagString:
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				return errCorrupt
			}
			e.Values[i] = string(b[n : n+int(l)])
			b = b[n+int(l):]
		case tagInt:
			v, n := binary.Varint(b)
			if n <= 0 {
				return errCorrupt
			}
			e.Values[i] = v
			b = b[n:]
		case tagFloat:
			if len(b) < 8 {
				return errCorrupt
			}
			e.Values[i] = math.Float64frombits(binary.LittleEndian.Uint64(b))
			b = b[8:]
		case tagTrue:
			e.Values[i] = true
		case tagFalse:
			e.Values[i] = false
		default:
			return errCorrupt
		}
	}
	if len(b) != 0 {
		return errCorrupt
	}
	return nil
}
