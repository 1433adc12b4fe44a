package ingest

import (
	"testing"

	"github.com/segmentio/ksuid"
)

func TestIDSourceBeyondOneSequence(t *testing.T) {
	const n = 70_000 // more than the 65,536 ids of one seed
	s := idSource{now: testNow, buf: make([]byte, 0, ksuidLen*n)}
	seen := make(map[string]bool, n)
	var prev ksuid.KSUID
	for i := range n {
		text := string(s.next())
		id, err := ksuid.Parse(text)
		if err != nil {
			t.Fatalf("id %d %q: %v", i, text, err)
		}
		if !id.Time().Equal(testNow) {
			t.Fatalf("id %d %q: time %v, want %v", i, text, id.Time(), testNow)
		}
		if seen[text] {
			t.Fatalf("id %d %q was assigned before", i, text)
		}
		seen[text] = true
		if i%65_536 != 0 && ksuid.Compare(prev, id) >= 0 {
			t.Fatalf("id %d %q does not follow %q", i, text, prev)
		}
		prev = id
	}
}
