package main

import (
	"os"
	"testing"

	"github.com/logmesh/logmesh/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.CleanupBinary() // the agent binary tests built
	os.Exit(code)
}
