package testutil

import (
	"testing"
	"time"

	"github.com/logmesh/logmesh/peer"
)

// TestClustersOfTwoTestsNeverMerge: cluster A loses p2, and a peer of
// cluster B is given p2's gossip address, as a test of another package
// running at the same time may be. A's p1 keeps reconnecting to the address
// of the member it lost; it must not reach B's peer and merge the two
// clusters (both name their peers p1, p2). Each test cluster's own gossip
// label keeps them apart.
func TestClustersOfTwoTestsNeverMerge(t *testing.T) {
	a := NewCluster(t, 2, nil)
	a.WaitMembers(20 * time.Second)
	lost := a.Config(1).GossipAddr
	a.Stop(1)
	WaitFor(t, 10*time.Second, "A's p1 to see its p2 failed", func() bool {
		return statusAt(a.Peer(0), "p2") == "failed"
	})
	b := NewCluster(t, 2, func(i int, c *peer.Config) {
		if i == 1 {
			c.GossipAddr = lost
		}
	})
	b.WaitMembers(20 * time.Second)
	// A's p1 retries its lost member every second (test timings); nothing
	// to wait for but those retries
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if st := statusAt(a.Peer(0), "p2"); st != "failed" && st != "left" && st != "" {
			t.Fatalf("cluster A sees a p2 %s: it reached cluster B's p2 at A's old address", st)
		}
		for _, m := range b.Peer(0).Members() {
			if m.Address != b.Config(0).GossipAddr && m.Address != lost {
				t.Fatalf("cluster B sees %s at %s, not one of its own addresses", m.Name, m.Address)
			}
		}
	}
}

func statusAt(p *peer.Peer, name string) string {
	for _, m := range p.Members() {
		if m.Name == name {
			return string(m.Status)
		}
	}
	return ""
}
