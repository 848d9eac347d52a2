package bench

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/logmesh/logmesh/testutil"
	"github.com/logmesh/logmesh/testutil/leaks"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, leaks.Options(
		// VerifyTestMain exits: remove the built binary on the way out
		goleak.Cleanup(func(code int) { testutil.CleanupBinary(); os.Exit(code) }))...)
}
