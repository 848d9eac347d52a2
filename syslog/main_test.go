package syslog

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: every
// server test ends with Close, which must stop them all.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
