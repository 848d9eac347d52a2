package testutil

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/logmesh/logmesh/testutil/leaks"
)

// VerifyMain is a TestMain for packages whose tests start agents: it runs the
// tests, fails them on goroutines left running (leaks.Options), and removes
// the binary Binary built, whatever the outcome.
func VerifyMain(m *testing.M) {
	goleak.VerifyTestMain(m, leaks.Options(
		// VerifyTestMain exits: remove the built binary on the way out
		goleak.Cleanup(func(code int) { CleanupBinary(); os.Exit(code) }))...)
}
