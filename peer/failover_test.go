package peer_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/logmesh/logmesh/client"
	"github.com/logmesh/logmesh/index"
	"github.com/logmesh/logmesh/testutil"
)

// TestSIGKILLReplicaDuringIngestionThenRestart: writes go on while a replica
// is killed, queries still return everything acknowledged — saying they may
// miss what the dead peer received and had not pushed (its delivered-through
// time is the last it published) and nothing else — and after the restart
// the hints drain, the replica holds every record it owns and answers are
// full again.
func TestSIGKILLReplicaDuringIngestionThenRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	c := testutil.NewProcCluster(t, 3)
	for _, p := range c.Procs {
		c.WaitStatus(30*time.Second, p.Name, "alive")
	}
	ws := startWriters([]*client.Client{c.Client(0), c.Client(1)}, func(w int, err error) { // writers on p1 and p2
		t.Errorf("write to p%d failed while p3 was down: %v", w+1, err)
	})
	testutil.WaitFor(t, 30*time.Second, "writes before the kill", func() bool { return ws.count() >= 2000 })
	c.Procs[2].Kill()
	before := ws.count()
	testutil.WaitFor(t, 30*time.Second, "writes while p3 is down", func() bool { return ws.count() >= before+2000 })
	c.WaitStatus(30*time.Second, "p3", "failed")
	all := ids(ws.stop())

	for i := 0; i < 2; i++ {
		got, cov := clusterIDs(t, c.Client(i))
		if cov.State != "partial" || cov.Missing != "" || !strings.HasPrefix(cov.Unread, "p3@") || strings.Contains(cov.Unread, ",") {
			t.Fatalf("query at p%d with p3 down: coverage %+v, want partial naming p3 as unread and nothing else", i+1, cov)
		}
		for _, id := range all {
			if !got[id] {
				t.Fatalf("query at p%d with p3 down misses acknowledged %s", i+1, id)
			}
		}
	}

	c.Procs[2].Start()
	c.WaitStatus(30*time.Second, "p3", "alive")
	testutil.WaitFor(t, 60*time.Second, "hints for p3 to drain", func() bool {
		for i := 0; i < 2; i++ {
			s, err := c.Client(i).Status(context.Background())
			if err != nil {
				return false
			}
			for _, r := range s.Replication {
				if r.Peer == "p3" && (r.UndeliveredCount > 0 || r.Cursor < r.Head) {
					return false
				}
			}
		}
		return true
	})
	testutil.WaitFor(t, 30*time.Second, "full answers once p3 is back", func() bool {
		_, cov := clusterIDs(t, c.Client(0))
		return cov.State == "full"
	})
	held := localIDs(t, c.Client(2))
	missing := 0
	for _, id := range all {
		if !held[id] { // with 3 peers and 3 replicas p3 owns everything
			missing++
			t.Logf("p3 lacks %s (received %s)", id, id.Time().Format(time.RFC3339Nano))
		}
	}
	if missing > 0 {
		c.Procs[2].Stop()
		cfg := index.TestConfig(c.Procs[2].DataDir() + "/store")
		db, err := index.Open(cfg)
		if err == nil {
			for _, id := range all {
				if !held[id] {
					_, gerr := db.Get(id)
					t.Logf("p3's store, opened after stopping it: Get %s: %v", id, gerr)
				}
			}
			db.Close()
		}
		t.Fatalf("after restart p3 lacks %d of %d acknowledged records", missing, len(all))
	}
	t.Logf("%d acknowledged records, all on the restarted replica", len(all))
}

// TestSIGTERMLeavesGracefully: a stopped agent is seen `left`, not `failed`,
// and the others stop placing data on it.
func TestSIGTERMLeavesGracefully(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	c := testutil.NewProcCluster(t, 3)
	for _, p := range c.Procs {
		c.WaitStatus(30*time.Second, p.Name, "alive")
	}
	c.Procs[2].Stop()
	c.WaitStatus(30*time.Second, "p3", "left")
	// the placement no longer names p3: every partition's owners are p1 and p2
	s, err := c.Client(0).Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range s.Replication {
		if r.Peer == "p3" {
			t.Fatalf("p1 still replicates to p3 after it left: %+v", r)
		}
	}
	// and it rejoins as itself when started again with the same name and data
	c.Procs[2].Start()
	c.WaitStatus(30*time.Second, "p3", "alive")
}
