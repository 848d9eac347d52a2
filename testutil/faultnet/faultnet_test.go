package faultnet_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/logmesh/logmesh/testutil"
	"github.com/logmesh/logmesh/testutil/faultnet"
	"github.com/logmesh/logmesh/testutil/leaks"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, leaks.Options()...)
}

func status(c *testutil.Cluster, i int, name string) string {
	for _, m := range c.Peer(i).Members() {
		if m.Name == name {
			return m.Status
		}
	}
	return ""
}

func TestPartitionCutsGossipAndDataAndHeals(t *testing.T) {
	n := faultnet.New(1)
	defer n.Close()
	c := testutil.NewClusterOn(t, n, 3, nil)
	c.WaitAlive(20 * time.Second)
	n.Partition([]string{"p1", "p2"}, []string{"p3"})
	testutil.WaitFor(t, 20*time.Second, "both sides to see the other failed", func() bool {
		return status(c, 0, "p3") == "failed" && status(c, 2, "p1") == "failed" && status(c, 2, "p2") == "failed"
	})
	// writes on the majority side are not pushed across the cut
	cl := c.Client(0)
	if _, err := cl.Ingest(context.Background(), []byte("{\"message\":\"x\"}\n"), "application/x-ndjson", nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // nothing to wait for: showing that nothing arrives
	if got := c.Peer(2).Digest().Count; got != 0 {
		t.Fatalf("a record crossed the partition (%d on p3)", got)
	}
	n.Heal()
	c.WaitAlive(30 * time.Second)
	testutil.WaitFor(t, 20*time.Second, "the record to reach p3 after the heal", func() bool { return c.Peer(2).Digest().Count == 1 })
}

func TestToxicLatencySlowsTheDataPlane(t *testing.T) {
	n := faultnet.New(2)
	defer n.Close()
	c := testutil.NewClusterOn(t, n, 2, nil)
	c.WaitAlive(20 * time.Second)
	if err := n.Toxic("p1", "p2", "latency", `{"latency":300,"jitter":0}`); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := c.Client(0).Ingest(context.Background(), []byte("{\"message\":\"slow\"}\n"), "application/x-ndjson", nil); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 20*time.Second, "the record on p2", func() bool { return c.Peer(1).Digest().Count == 1 })
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Fatalf("replication took %v through a 300ms latency toxic", el)
	}
}
