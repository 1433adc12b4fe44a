package testkit

import (
	"testing"

	"github.com/sluicehq/sluice/featurestore/online"
)

// OnlineStore opens an empty online store in a temporary directory of the
// test, closed when the test ends.
func OnlineStore(t testing.TB) *online.Store {
	t.Helper()
	s, err := online.Open(t.TempDir(), online.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
