package peer_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/logmesh/logmesh/peer"
	"github.com/logmesh/logmesh/record"
	"github.com/logmesh/logmesh/testutil"
)

// sameEverywhere waits until every running peer stores the same records
// (equal digests: equal roots) and they are want.
func sameEverywhere(t *testing.T, c *testutil.Cluster, want int, within time.Duration) {
	t.Helper()
	var detail string
	testutil.WaitFor(t, within, fmt.Sprintf("all replicas to hold the same %d records", want), func() bool {
		run := c.Running()
		first := c.Peer(run[0]).Digest()
		detail = fmt.Sprintf("p%d holds %d", run[0]+1, first.Count)
		for _, i := range run[1:] {
			d := c.Peer(i).Digest()
			detail += fmt.Sprintf(", p%d %d", i+1, d.Count)
			if d != first {
				return false
			}
		}
		return first.Count == uint64(want)
	}, func() string { return detail })
}

func TestAntiEntropyRepairsEverySourceOfDivergence(t *testing.T) {
	interval := 2 * time.Second
	c := testutil.NewCluster(t, 3, func(i int, cfg *peer.Config) {
		cfg.AntiEntropyInterval = interval
		cfg.MaxHintsBytes = 16 << 10 // a backlog for a down peer is soon dropped
	})
	c.WaitAlive(20 * time.Second)
	total := 0

	// 1. a record written to one replica only
	ingestJSON(t, c.Client(0), "admin-local", 300, url.Values{"local": {"true"}})
	total += 300
	if got := c.Peer(1).Digest().Count; got != 0 {
		t.Fatalf("an admin local write reached p2 (%d records) without anti-entropy", got)
	}
	sameEverywhere(t, c, total, 2*interval+5*time.Second)

	// 2. a replica down during writes, with its undelivered data dropped
	c.Stop(2)
	testutil.WaitFor(t, 20*time.Second, "p3 failed", func() bool { return statusIn(c.Peer(0), "p3") == "failed" })
	for b := 0; b < 4; b++ {
		ingestJSON(t, c.Client(b%2), fmt.Sprintf("while-down-%d", b), 200, nil)
		total += 200
	}
	testutil.WaitFor(t, 20*time.Second, "the backlog for p3 dropped", func() bool {
		return c.Peer(0).Status().Skips > 0 && c.Peer(1).Status().Skips > 0
	})
	c.Start(2)
	sameEverywhere(t, c, total, 2*interval+10*time.Second)

	// 3. a peer whose disk was wiped
	c.Stop(2)
	if err := os.RemoveAll(c.Config(2).DataDir); err != nil {
		t.Fatal(err)
	}
	c.Start(2)
	sameEverywhere(t, c, total, 2*interval+15*time.Second)

	// and the peers can prove it
	cv, err := c.Client(0).Convergence(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 2*interval+5*time.Second, "every partition proven equal", func() bool {
		cv, err = c.Client(0).Convergence(context.Background())
		if err != nil || cv.ConvergedThrough.IsZero() {
			return false
		}
		for _, p := range cv.Partitions {
			if p.ProvenEqualAt.IsZero() {
				return false
			}
		}
		return true
	})
}

// copies counts, per record, the running peers storing it.
func copies(t *testing.T, c *testutil.Cluster) map[record.ID]int {
	n := map[record.ID]int{}
	for _, i := range c.Running() {
		for id := range localIDs(t, c.Client(i)) {
			n[id]++
		}
	}
	return n
}

// placedExactly reports the first peer holding a record it does not own, or
// lacking one it owns.
func placedExactly(t *testing.T, c *testutil.Cluster, ids []record.ID) string {
	for _, i := range c.Running() {
		p := c.Peer(i)
		held := localIDs(t, c.Client(i))
		for _, id := range ids {
			owns := slices.Contains(p.Owners(id.Partition()), p.Name())
			if owns != held[id] {
				return fmt.Sprintf("%s owns=%v holds=%v %s", p.Name(), owns, held[id], id)
			}
		}
	}
	return ""
}

func TestJoinAndLeaveMoveDataWithoutLosingCopies(t *testing.T) {
	c := testutil.NewCluster(t, 3, nil)
	c.WaitAlive(20 * time.Second)
	var ids []record.ID
	for i := 0; i < 3; i++ {
		ids = append(ids, ingestJSON(t, c.Client(i), fmt.Sprintf("before-join-%d", i), 400, nil)...)
	}
	sameEverywhere(t, c, len(ids), 20*time.Second)

	// a fourth peer joins: it gets exactly what it owns, the others hand over
	// what they no longer own, and no record ever has fewer than 3 copies
	stop := make(chan struct{})
	lowest := make(chan int, 1)
	go func() {
		low := 3
		for {
			select {
			case <-stop:
				lowest <- low
				return
			case <-time.After(200 * time.Millisecond):
			}
			for _, id := range ids {
				if n := copiesOf(c, id); n < low {
					low = n
				}
			}
		}
	}()
	c.Add(nil)
	c.WaitAlive(20 * time.Second)
	var detail string
	testutil.WaitFor(t, 60*time.Second, "every peer to hold exactly the partitions it owns",
		func() bool { detail = placedExactly(t, c, ids); return detail == "" }, func() string { return detail })
	close(stop)
	if low := <-lowest; low < 3 {
		t.Fatalf("during the join some record had only %d copies", low)
	}
	for id, n := range copies(t, c) {
		if n != 3 {
			t.Fatalf("after the join %s has %d copies, want 3", id, n)
		}
	}

	// a peer leaves: the others take its partitions back
	c.Leave(3)
	testutil.WaitFor(t, 60*time.Second, "every record on 3 peers again after the leave", func() bool {
		for _, id := range ids {
			if copiesOf(c, id) != 3 {
				return false
			}
		}
		return placedExactly(t, c, ids) == ""
	})
}

// copiesOf counts the running peers whose store holds id.
func copiesOf(c *testutil.Cluster, id record.ID) int {
	n := 0
	for _, i := range c.Running() {
		if _, err := c.Peer(i).DB().Get(id); err == nil {
			n++
		}
	}
	return n
}

func TestPeerFailedTooLongLosesItsPartitions(t *testing.T) {
	c := testutil.NewCluster(t, 4, func(i int, cfg *peer.Config) { cfg.FailedReassignAfter = 2 * time.Second })
	c.WaitAlive(20 * time.Second)
	var ids []record.ID
	for i := 0; i < 4; i++ {
		ids = append(ids, ingestJSON(t, c.Client(i), fmt.Sprintf("before-%d", i), 200, nil)...)
	}
	var detail string
	testutil.WaitFor(t, 30*time.Second, "records on their owners", func() bool { detail = everyOwnerHasIt(t, c, ids); return detail == "" },
		func() string { return detail })
	c.Stop(3)
	testutil.WaitFor(t, 30*time.Second, "p4's partitions reassigned and every record on 3 running peers", func() bool {
		for pt := 0; pt < record.NumPartitions; pt++ {
			if slices.Contains(c.Peer(0).Owners(record.Partition(pt)), "p4") {
				return false
			}
		}
		for _, id := range ids {
			if copiesOf(c, id) != 3 {
				return false
			}
		}
		return true
	})
}
