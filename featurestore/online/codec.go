package online

import (
	"encoding/binary"

	"github.com/sluicehq/sluice/featurestore/window"
)

// encodeEvent appends the stored form of an event's arrival time and values.
func encodeEvent(dst []byte, e *window.Event) []byte {
	dst = binary.AppendVarint(dst, e.Arrival)
	dst = binary.AppendUvarint(dst, uint64(len(e.Values)))
	for _, v := range e.Values {
		dst = window.AppendValue(dst, v)
	}
	return dst
}

// decodeEvent reads what encodeEvent wrote into e.
func decodeEvent(b []byte, e *window.Event) error {
	d := window.NewDecoder(b)
	e.Arrival = d.Varint()
	n := d.Uvarint()
	if n > uint64(len(b)) {
		return window.ErrCorrupt
	}
	e.Values = make([]any, n)
	for i := range e.Values {
		e.Values[i] = d.Value()
	}
	return d.Err()
}
