package train

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a writer or a build leaves a
// goroutine running.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
