package testutil

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/logmesh/logmesh/client"
)

// ProcCluster is a cluster of real logmesh agent processes on loopback:
// for tests of signals, crashes and restarts.
type ProcCluster struct {
	t     testing.TB
	Procs []*Process
	// Seed is the first process's gossip address, which the others join.
	Seed string
}

// NewProcCluster prepares and starts n agents (the others joining the
// first), with test timings and extra flags. Unless extra sets a gossip key
// or a label, the cluster gets a label of its own (see ClusterLabelFor), so
// that it never merges with another test's cluster.
func NewProcCluster(t testing.TB, n int, extra ...string) *ProcCluster {
	t.Helper()
	c := &ProcCluster{t: t}
	if !slices.Contains(extra, "--encrypt") && !slices.Contains(extra, "--cluster-label") {
		extra = append([]string{"--cluster-label", ClusterLabelFor(t.TempDir())}, extra...)
	}
	var seed string
	for i := 0; i < n; i++ {
		gossipAddr := FreeAddr(t)
		args := append([]string{"--gossip-addr", gossipAddr, "--test-timings", "--fsync", "50ms",
			"--memtable-size", "4MiB", "--cache-size", "4MiB"}, extra...)
		if seed != "" {
			args = append(args, "--join", seed)
		} else {
			seed = gossipAddr
			c.Seed = seed
		}
		p := NewProcess(t, fmt.Sprintf("p%d", i+1), args...)
		c.Procs = append(c.Procs, p)
		p.Start()
	}
	return c
}

// Client returns an API client for process i.
func (c *ProcCluster) Client(i int) *client.Client {
	cl, err := client.New(c.Procs[i].APIAddr)
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// StatusOf returns how process i sees the member named name ("" if unknown).
func (c *ProcCluster) StatusOf(i int, name string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ms, err := c.Client(i).Members(ctx)
	if err != nil {
		return ""
	}
	for _, m := range ms {
		if m.Name == name {
			return m.Status
		}
	}
	return ""
}

// WaitStatus waits until every running process but the member itself sees
// member name in state st.
func (c *ProcCluster) WaitStatus(timeout time.Duration, name, st string) {
	c.t.Helper()
	WaitFor(c.t, timeout, name+" "+st+" everywhere", func() bool {
		for i, p := range c.Procs {
			if p.Name == name || !p.Running() {
				continue
			}
			if c.StatusOf(i, name) != st {
				return false
			}
		}
		return true
	})
}
