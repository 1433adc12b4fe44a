package schemas

import (
	"strings"
	"testing"
	"time"

	"github.com/segmentio/ksuid"
)

// assignedIDs returns n ids of a sequence seeded with NewIDSeed(at).
func assignedIDs(t *testing.T, at time.Time, n int) []ksuid.KSUID {
	t.Helper()
	seq := ksuid.Sequence{Seed: NewIDSeed(at)}
	out := make([]ksuid.KSUID, n)
	for i := range out {
		id, err := seq.Next()
		if err != nil {
			t.Fatal(err)
		}
		out[i] = id
	}
	return out
}

func TestAssignedIDs(t *testing.T) {
	at := time.Date(2026, 11, 23, 1, 2, 3, 0, time.UTC)
	ids := assignedIDs(t, at, 65_536) // all a seed gives
	seen := map[ksuid.KSUID]bool{}
	for i, id := range ids {
		if !Assigned(id.String()) {
			t.Fatalf("id %d %s of the sequence is not assigned", i, id)
		}
		if !id.Time().Equal(at) {
			t.Fatalf("id %d %s has time %v, want %v", i, id, id.Time(), at)
		}
		if seen[id] {
			t.Fatalf("id %d %s came twice", i, id)
		}
		seen[id] = true
	}
	if other := assignedIDs(t, at, 1)[0]; seen[other] {
		t.Errorf("a second seed at the same second gave %s again", other)
	}
	for i := range 10_000 {
		if id := ksuid.New(); Assigned(id.String()) {
			t.Fatalf("random ksuid %d %s counts as assigned", i, id)
		}
	}
	// Changing a character in the timestamp or random part breaks the tag.
	s := ids[7].String()
	for _, i := range []int{0, 5, 10} {
		c := byte('0')
		if s[i] == c {
			c = '1'
		}
		if changed := s[:i] + string(c) + s[i+1:]; Assigned(changed) {
			t.Errorf("%s, %s with character %d changed, counts as assigned", changed, s, i)
		}
	}
	for _, id := range []string{"", "order-7", strings.Repeat("z", 27), s[:26], s + "0", strings.ToLower(s)} {
		if Assigned(id) {
			t.Errorf("%q counts as assigned", id)
		}
	}
}
