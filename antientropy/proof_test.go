package antientropy

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/logmesh/logmesh/record"
)

// proofs records the OnEqual reports of one side.
type proofs struct {
	mu  sync.Mutex
	got []Proof
}

func (p *proofs) on(pr Proof) {
	p.mu.Lock()
	p.got = append(p.got, pr)
	p.mu.Unlock()
}

func (p *proofs) parts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, pr := range p.got {
		n += len(pr.Parts)
	}
	return n
}

// TestDifferentCutoffsProveNothingButStillRepair: a peer that dropped a
// window the other still keeps is not equal to it, however equal the
// windows both keep are: no proof on either side. Records at or after the
// later cutoff are still repaired, and the initiator's roots are re-asked at
// the responder's later cutoff, so that the shared windows compare equal.
func TestDifferentCutoffsProveNothingButStillRepair(t *testing.T) {
	a, b := newMem(), newMem()
	var pa, pb proofs
	tr := &direct{peers: map[string]*Peer{"a": New(Config{Store: a, OnEqual: pa.on}), "b": New(Config{Store: b, OnEqual: pb.on})}}
	now := time.Now()
	old := mkRec(now.Add(-10*time.Hour), 1)
	fresh := mkRec(now.Add(-time.Minute), 2)
	a.Put(context.Background(), []Rec{old, fresh})
	b.cutoff = record.WindowOf(now.Add(-2 * time.Hour).UnixMilli()) // b dropped the old window
	syncAll(t, tr, "a", "b", true)
	if got := b.ids(); len(got) != 1 || got[0] != fresh.ID {
		t.Fatalf("b holds %v, want the fresh record only", got)
	}
	if pa.parts()+pb.parts() != 0 {
		t.Fatalf("proofs made across different cutoffs: a %d, b %d partitions", pa.parts(), pb.parts())
	}
	// once both keep the same windows, the same records prove equal
	a.cutoff = b.cutoff
	res, err := tr.peers["a"].Sync(context.Background(), tr, "b", allPartitions(), true)
	if err != nil || res.DifferingPartitions != 0 || len(res.Equal) != record.NumPartitions {
		t.Fatalf("same cutoffs: %+v, %v", res, err)
	}
	if pa.parts() != record.NumPartitions || pb.parts() != record.NumPartitions {
		t.Fatalf("proofs with equal cutoffs: a %d, b %d, want every partition on both sides", pa.parts(), pb.parts())
	}
}

// TestEarlierCutoffReasksAtTheLaterOne: the initiator keeps more windows
// than the responder; the only difference is before the responder's cutoff,
// so after the re-ask no partition differs (before, the initiator's roots
// included windows the responder skipped, and never matched).
func TestEarlierCutoffReasksAtTheLaterOne(t *testing.T) {
	a, b := newMem(), newMem()
	tr := &direct{peers: map[string]*Peer{"a": New(Config{Store: a}), "b": New(Config{Store: b})}}
	now := time.Now()
	old := mkRec(now.Add(-10*time.Hour), 1)
	fresh := mkRec(now.Add(-time.Minute), 2)
	a.Put(context.Background(), []Rec{old, fresh})
	b.Put(context.Background(), []Rec{fresh})
	b.cutoff = record.WindowOf(now.Add(-2 * time.Hour).UnixMilli())
	res, err := tr.peers["a"].Sync(context.Background(), tr, "b", allPartitions(), true)
	if err != nil || res.DifferingPartitions != 0 || res.Sent+res.Received != 0 {
		t.Fatalf("a round whose only difference is before b's cutoff: %+v, %v", res, err)
	}
}

// TestVouchesTravelWithTheRoots: each side learns, for every partition
// proven equal, whether the other held it complete.
func TestVouchesTravelWithTheRoots(t *testing.T) {
	a, b := newMem(), newMem()
	var pa, pb proofs
	even := func(p record.Partition) bool { return p%2 == 0 }
	odd := func(p record.Partition) bool { return p%3 == 0 }
	tr := &direct{peers: map[string]*Peer{
		"a": New(Config{Store: a, OnEqual: pa.on, Vouches: even}),
		"b": New(Config{Store: b, OnEqual: pb.on, Vouches: odd}),
	}}
	if _, err := tr.peers["a"].Sync(context.Background(), tr, "b", allPartitions(), true); err != nil {
		t.Fatal(err)
	}
	check := func(side string, ps *proofs, want func(record.Partition) bool) {
		t.Helper()
		if ps.parts() != record.NumPartitions {
			t.Fatalf("%s saw %d partitions proven, want all", side, ps.parts())
		}
		for _, pr := range ps.got {
			for i, p := range pr.Parts {
				if pr.Vouched[i] != want(p) {
					t.Fatalf("%s: partition %d vouched %v, want %v", side, p, pr.Vouched[i], want(p))
				}
			}
		}
	}
	check("a", &pa, odd) // a learns b's vouches
	check("b", &pb, even)
}
