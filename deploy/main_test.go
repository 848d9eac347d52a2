// Package deploy_test checks the deployment examples under deploy/ against
// the real thing: the rsyslog forwarding config against rsyslogd and a
// logmesh agent, the Kubernetes manifests against what the agent accepts.
package deploy_test

import (
	"testing"

	"github.com/logmesh/logmesh/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyMain(m) }
