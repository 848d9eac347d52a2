package peer_test

import (
	"testing"

	"github.com/logmesh/logmesh/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyMain(m) }
