// Package deploy_test checks the deployment examples under deploy/ against
// the real thing: the rsyslog forwarding config against rsyslogd and a
// logmesh agent, the Kubernetes manifests against what the agent accepts.
package deploy_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/logmesh/logmesh/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// VerifyTestMain exits: remove the built binary on the way out
		goleak.Cleanup(func(code int) { testutil.CleanupBinary(); os.Exit(code) }),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		// memberlist does not wait for a probe in flight at shutdown; it
		// ends by itself when the probe's ack timer fires
		goleak.IgnoreTopFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"))
}
