package peer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/logmesh/logmesh/api"
	"github.com/logmesh/logmesh/client"
	"github.com/logmesh/logmesh/testutil"
)

// TestRogueAgentsGetNothing: agents that try to join an encrypted cluster,
// real processes, with no key, with a wrong key, and one under a member's
// name, are never members and never receive a record, while the cluster
// keeps every record and answers in full. (Before gossip refused plaintext
// off loopback, two keyless rogues joined a cluster, took partitions, and
// killing them lost 16% of the data.)
func TestRogueAgentsGetNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	const key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	c := testutil.NewProcCluster(t, 2, "--encrypt", key, "--replicas", "2")
	c.WaitStatus(30*time.Second, "p1", "alive")
	c.WaitStatus(30*time.Second, "p2", "alive")
	ids := ingestJSON(t, c.Client(0), "before-rogues", 300, nil)

	rogue := func(name string, flags ...string) *testutil.Process {
		args := append([]string{"--gossip-addr", testutil.FreeAddr(t), "--test-timings", "--join", c.Seed, "--replicas", "2"}, flags...)
		p := testutil.NewProcess(t, name, args...)
		p.Start()
		return p
	}
	rogues := []*testutil.Process{
		rogue("rogue-nokey"),
		rogue("rogue-wrongkey", "--encrypt", "ZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmY="),
		rogue("p2"), // a member's name, no key
	}
	ids = append(ids, ingestJSON(t, c.Client(1), "with-rogues", 300, nil)...)
	// many join attempts at test timings; nothing to wait for but time
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		for i := range c.Procs {
			for _, r := range rogues {
				if r.Name == "p2" {
					continue
				}
				if st := c.StatusOf(i, r.Name); st != "" {
					t.Fatalf("p%d sees %s as %s: a rogue became a member", i+1, r.Name, st)
				}
			}
		}
		for _, r := range rogues {
			cl := procClient(t, r)
			if st := procStatus(t, cl, r.Name); st.Records != 0 {
				t.Fatalf("rogue %s holds %d records", r.Name, st.Records)
			}
			ms, err := cl.Members(context.Background())
			if err != nil {
				t.Fatalf("members at %s: %v", r.Name, err)
			}
			for _, m := range ms {
				if m.Name == "p1" {
					t.Fatalf("rogue %s sees p1 (%s): it joined", r.Name, m.Status)
				}
			}
		}
	}
	testutil.WaitFor(t, 30*time.Second, "full answers with every record at both peers", func() bool {
		for i := range c.Procs {
			got, cov := clusterIDs(t, c.Client(i))
			if cov.State != "full" || len(got) != len(ids) {
				return false
			}
			for _, id := range ids {
				if !got[id] {
					return false
				}
			}
		}
		return true
	})
}

func procClient(t *testing.T, p *testutil.Process) *client.Client {
	t.Helper()
	cl, err := client.New(p.APIAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.CloseIdleConnections)
	return cl
}

func procStatus(t *testing.T, cl *client.Client, name string) api.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := cl.Status(ctx)
	if err != nil {
		t.Fatal(fmt.Errorf("status of %s: %w", name, err))
	}
	return st
}
