package schemas

import (
	"crypto/rand"
	"encoding/binary"
	"time"

	"github.com/segmentio/ksuid"
)

// Event ids that Sluice assigns.
//
// Ingest gives an event that arrives without an _event_id a ksuid of its
// own. Such an id names one event and no other: ingest draws each id once,
// its producer writes each record once (idempotent, acks=all), and no
// producer can send it back, since the decoder refuses an _event_id of
// that form. A dedupe lookup could never find one, so the stream engine
// keeps no record of them.
//
// An assigned id carries a tag that tells it from ksuids drawn elsewhere:
// of its 20 bytes, 12 to 17 are a hash of 0 to 11 (the timestamp and eight
// random bytes), which a ksuid drawn at random matches once in 2^48.
// Bytes 18 and 19 are the counter of a ksuid.Sequence, so one seed gives
// 65,536 ids.

const (
	tagFrom, tagTo = 12, 18
	// assignedIDLen is the length of a ksuid's text.
	assignedIDLen = 27
)

// NewIDSeed returns the seed of a ksuid.Sequence whose ids are assigned
// ids, with the timestamp t.
func NewIDSeed(t time.Time) ksuid.KSUID {
	var payload [16]byte
	rand.Read(payload[:tagFrom-4]) // crypto/rand.Read never fails
	id, err := ksuid.FromParts(t, payload[:])
	if err != nil { // only for a payload of the wrong length
		panic("schemas: ksuid payload: " + err.Error())
	}
	tag := idTag(id[:tagFrom])
	copy(id[tagFrom:tagTo], tag[:])
	return id
}

// Assigned reports whether id is an id that Sluice assigned.
func Assigned(id string) bool {
	if len(id) != assignedIDLen {
		return false
	}
	k, err := ksuid.Parse(id)
	if err != nil {
		return false
	}
	return [tagTo - tagFrom]byte(k[tagFrom:tagTo]) == idTag(k[:tagFrom])
}

// idTag hashes b (FNV-1a, from a basis of Sluice's own) into the tag.
func idTag(b []byte) (tag [tagTo - tagFrom]byte) {
	h := uint64(0x5c1ce1d0cbf29ce4)
	for _, c := range b {
		h ^= uint64(c)
		h *= 0x100000001b3
	}
	var full [8]byte
	binary.BigEndian.PutUint64(full[:], h)
	copy(tag[:], full[:])
	return tag
}
