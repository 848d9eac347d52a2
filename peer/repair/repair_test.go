package repair

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logmesh/logmesh/antientropy"
	"github.com/logmesh/logmesh/api"
	"github.com/logmesh/logmesh/gossip"
	"github.com/logmesh/logmesh/index"
	"github.com/logmesh/logmesh/index/indextest"
	"github.com/logmesh/logmesh/peer/link"
	"github.com/logmesh/logmesh/peer/view"
	"github.com/logmesh/logmesh/placement"
	"github.com/logmesh/logmesh/record"
)

func TestHaveRequestRoundTripsAndRefusesGarbage(t *testing.T) {
	g := record.NewGenerator(nil)
	var ids []record.ID
	for len(ids) < 5 {
		if id := g.Next(); id.Partition() == 9 {
			ids = append(ids, id)
		}
	}
	in := haveRequest{P: 9, Vouch: true, IDs: ids}
	b, _ := in.MarshalBinary()
	var out haveRequest
	if err := out.UnmarshalBinary(b); err != nil || out.P != 9 || !out.Vouch || len(out.IDs) != 5 || out.IDs[4] != ids[4] {
		t.Fatalf("round trip: %+v %v", out, err)
	}
	wrong := haveRequest{P: 10, IDs: ids}
	b2, _ := wrong.MarshalBinary()
	if err := out.UnmarshalBinary(b2); err == nil {
		t.Fatal("an ID of another partition was accepted")
	}
	for _, bad := range [][]byte{nil, b[:len(b)-1], append([]byte{2}, b[1:]...)} {
		if err := out.UnmarshalBinary(bad); err == nil {
			t.Fatalf("accepted %x", bad)
		}
	}
}

func FuzzHaveRequest(f *testing.F) {
	g := record.NewGenerator(nil)
	id := g.Next()
	seed, _ := (&haveRequest{P: id.Partition(), IDs: []record.ID{id}}).MarshalBinary()
	f.Add(seed)
	f.Add([]byte{1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m haveRequest
		if m.UnmarshalBinary(b) != nil {
			return
		}
		again, _ := m.MarshalBinary()
		var back haveRequest
		if err := back.UnmarshalBinary(again); err != nil || back.P != m.P || back.Vouch != m.Vouch || len(back.IDs) != len(m.IDs) {
			t.Fatalf("a decoded request does not round-trip: %v", err)
		}
	})
}

func TestCompletenessStateRoundTrips(t *testing.T) {
	var c completeness
	c.mu.clustered = true
	c.mu.complete[3], c.mu.witness[200] = true, true
	b := c.encodeLocked()
	var d completeness
	if !d.decode(b) || !d.mu.clustered || !d.mu.complete[3] || !d.mu.witness[200] || d.mu.complete[4] {
		t.Fatal("completeness does not round-trip")
	}
	if d.decode(b[:len(b)-1]) {
		t.Fatal("a truncated state decoded")
	}
}

func TestClaimedIgnoresSelfAndLeftMembers(t *testing.T) {
	all := view.MaskOf(5)
	ms := map[string]gossip.Member{
		"p1": {Name: "p1", Status: gossip.StatusAlive, Tags: map[string]string{view.TagComplete: all.String()}},
		"p2": {Name: "p2", Status: gossip.StatusLeft, Tags: map[string]string{view.TagComplete: all.String()}},
		"p3": {Name: "p3", Status: gossip.StatusFailed, Tags: map[string]string{view.TagWitness: view.MaskOf(6).String()}},
	}
	v := view.New("p1", ms, placement.Compute([]string{"p1", "p3"}, 3), 1)
	if claimed(v, 5) {
		t.Fatal("partition 5 is claimed only by this peer and by one that left")
	}
	if !claimed(v, 6) {
		t.Fatal("a failed member's witness claim was ignored")
	}
	v.Departed = map[string]view.Info{"p9": {Complete: view.MaskOf(7)}}
	if !claimed(v, 7) {
		t.Fatal("a departed member's claim was ignored")
	}
}

func TestAggregate(t *testing.T) {
	names := []string{"a", "b", "c"}
	table := placement.Compute(names, 3)
	ms := map[string]gossip.Member{}
	for _, n := range names {
		ms[n] = gossip.Member{Name: n, Status: gossip.StatusAlive}
	}
	v := view.New("a", ms, table, 1)
	now := time.Unix(1_800_000_000, 0)
	allMask := new(view.Mask)
	for i := range allMask {
		allMask[i] = true
	}
	local := func(node, store string, complete *view.Mask, at time.Time, others map[string]string) api.LocalConvergence {
		lc := api.LocalConvergence{Node: node, Store: store, Complete: complete.String()}
		for peer, st := range others {
			for p := 0; p < record.NumPartitions; p++ {
				lc.Proofs = append(lc.Proofs, api.PairProof{Peer: peer, PeerStore: st, Partition: p, At: at})
			}
		}
		return lc
	}
	t1 := now.Add(-time.Minute)
	locals := []api.LocalConvergence{
		local("a", "sa", allMask, t1, map[string]string{"b": "sb", "c": "sc"}),
		local("b", "sb", allMask, t1, map[string]string{"c": "sc"}),
		local("c", "sc", allMask, t1, nil),
	}
	cv := Aggregate(v, "a", locals, nil, now)
	if !cv.ConvergedThrough.Equal(t1) {
		t.Fatalf("converged through %v, want %v", cv.ConvergedThrough, t1)
	}
	// c was wiped: proofs with its old store do not count, and it fills
	locals[2] = local("c", "sc2", new(view.Mask), time.Time{}, nil)
	cv = Aggregate(v, "a", locals, nil, now)
	if !cv.ConvergedThrough.IsZero() || len(cv.Partitions[0].Filling) != 1 || cv.Partitions[0].Filling[0] != "c" {
		t.Fatalf("with c wiped: through %v, filling %v", cv.ConvergedThrough, cv.Partitions[0].Filling)
	}
	// a debt or an unreachable peer: nothing is proven through
	locals[2] = local("c", "sc", allMask, t1, nil)
	locals[1].Debts = true
	if cv = Aggregate(v, "a", locals, nil, now); !cv.ConvergedThrough.IsZero() {
		t.Fatal("converged through a time while a debt is outstanding")
	}
	locals[1].Debts = false
	if cv = Aggregate(v, "a", locals, []string{"d"}, now); !cv.ConvergedThrough.IsZero() {
		t.Fatal("converged through a time while a peer could not be asked")
	}
}

// TestNoGenesisWhileAFailedMemberIsReassigned: a peer whose placement left
// out a failed member (its partitions reassigned) does not call itself
// complete for partitions nobody claims in the tags it has: the members it
// cannot hear acknowledged records of them for the owners of their own
// placement, not for it (CI's seed 601, a peer on the minority side of a
// partition). While the failed member is still placed, or once it left,
// genesis goes on as before.
func TestNoGenesisWhileAFailedMemberIsReassigned(t *testing.T) {
	r := New(Config{Self: "p1", DB: indextest.Open(t), Logger: slog.New(slog.DiscardHandler)})
	ms := map[string]gossip.Member{
		"p1": {Name: "p1", Status: gossip.StatusAlive},
		"p2": {Name: "p2", Status: gossip.StatusAlive},
		"p3": {Name: "p3", Status: gossip.StatusFailed},
		"p4": {Name: "p4", Status: gossip.StatusLeft},
	}
	reassigned := view.New("p1", ms, placement.Compute([]string{"p1", "p2"}, 1), 1)
	placed := view.New("p1", ms, placement.Compute([]string{"p1", "p2", "p3"}, 1), 2)
	owned := func(v *view.View) (complete, all int) {
		for p := 0; p < record.NumPartitions; p++ {
			if v.Owns("p1", record.Partition(p)) {
				all++
				if r.Complete(record.Partition(p)) {
					complete++
				}
			}
		}
		return complete, all
	}
	t0 := time.Now()
	for _, d := range []time.Duration{0, time.Minute, time.Hour} {
		r.followAt(reassigned, t0.Add(d))
		if n, _ := owned(reassigned); n != 0 {
			t.Fatalf("with p3's partitions reassigned, p1 called itself complete for %d partitions", n)
		}
	}
	// p1 owns more under placed than it did: genesis for those waits for a
	// proof with p2 made since p1 owns them (p3 failed: none is needed)
	r.followAt(placed, t0.Add(2*time.Hour))
	proveAll(r, "p2", t0.Add(2*time.Hour+time.Second))
	r.followAt(placed, t0.Add(2*time.Hour+2*time.Second))
	if n, all := owned(placed); n != all || all == 0 {
		t.Fatalf("p3 failed but still placed, p4 left: p1 is complete for %d of the %d partitions it owns", n, all)
	}
}

// proveAll records that p's roots equalled this peer's, at at, for every
// partition.
func proveAll(r *Repairer, p string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for pt := 0; pt < record.NumPartitions; pt++ {
		r.mu.proofs[proofKey{p, "", record.Partition(pt)}] = at
	}
}

// TestGenesisAfterTheHoldersAreGoneWaitsForProofs: when every member that
// held partitions complete has left (an operator forgot them), the owners
// left hold different parts of them: p1 was still being filled from the
// holders, p2 was given them when they failed and holds nothing. p2 is not
// complete for them until it has proven its roots equal to every other
// owner's since it owns them (before, every owner called itself complete
// at once, and a query read the empty p2 as "full": CI's
// TestNewOwnersDoNotVouchForEachOther). A new cluster, where no store was
// ever in one and nobody claims anything, still starts complete at once.
func TestGenesisAfterTheHoldersAreGoneWaitsForProofs(t *testing.T) {
	all := new(view.Mask)
	for i := range all {
		all[i] = true
	}
	members := func(p4 gossip.Status) map[string]gossip.Member {
		ms := map[string]gossip.Member{"p4": {Name: "p4", Status: p4, Tags: map[string]string{view.TagComplete: all.String()}}}
		for _, n := range []string{"p1", "p2", "p3"} {
			ms[n] = gossip.Member{Name: n, Status: gossip.StatusAlive}
		}
		return ms
	}
	table := placement.Compute([]string{"p1", "p2", "p3"}, 3)
	complete := func(r *Repairer) (n int) {
		for p := 0; p < record.NumPartitions; p++ {
			if r.Complete(record.Partition(p)) {
				n++
			}
		}
		return n
	}
	t0 := time.Now()
	r := New(Config{Self: "p2", DB: indextest.Open(t), Logger: slog.New(slog.DiscardHandler)})
	r.followAt(view.New("p2", members(gossip.StatusAlive), table, 1), t0) // p4 holds everything
	if n := complete(r); n != 0 {
		t.Fatalf("complete for %d partitions while p4 claims them all", n)
	}
	proveAll(r, "p1", t0.Add(500*time.Millisecond)) // before p4 left: says nothing
	proveAll(r, "p3", t0.Add(500*time.Millisecond))
	gone := view.New("p2", members(gossip.StatusLeft), table, 2)
	r.followAt(gone, t0.Add(time.Second))
	if n := complete(r); n != 0 {
		t.Fatalf("p4 left: complete for %d partitions with no proof since p2 owns them", n)
	}
	proveAll(r, "p1", t0.Add(2*time.Second))
	r.followAt(gone, t0.Add(3*time.Second))
	if n := complete(r); n != 0 {
		t.Fatalf("complete for %d partitions proven equal to p1 but not to p3", n)
	}
	proveAll(r, "p3", t0.Add(4*time.Second))
	r.followAt(gone, t0.Add(5*time.Second))
	if n := complete(r); n != record.NumPartitions {
		t.Fatalf("proven equal to both other owners: complete for %d of %d partitions", n, record.NumPartitions)
	}

	// p2 gains the partitions after nobody claims them: proofs made before
	// it owned them say nothing
	late := New(Config{Self: "p2", DB: indextest.Open(t), Logger: slog.New(slog.DiscardHandler)})
	late.followAt(view.New("p2", members(gossip.StatusLeft), placement.Compute([]string{"p1", "p3"}, 3), 1), t0)
	proveAll(late, "p1", t0.Add(time.Second))
	proveAll(late, "p3", t0.Add(time.Second))
	late.followAt(gone, t0.Add(2*time.Second))
	late.followAt(gone, t0.Add(3*time.Second))
	if n := complete(late); n != 0 {
		t.Fatalf("complete for %d partitions proven equal before p2 owned them", n)
	}
	proveAll(late, "p1", t0.Add(4*time.Second))
	proveAll(late, "p3", t0.Add(4*time.Second))
	late.followAt(gone, t0.Add(5*time.Second))
	if n := complete(late); n != record.NumPartitions {
		t.Fatalf("proven equal since it owns them: complete for %d of %d partitions", n, record.NumPartitions)
	}

	// without anti-entropy no proof can come (CI's push-only scenario
	// stayed partial): genesis goes on without them
	off := New(Config{Self: "p2", DB: indextest.Open(t), Disabled: true, Logger: slog.New(slog.DiscardHandler)})
	off.followAt(view.New("p2", members(gossip.StatusAlive), table, 1), t0)
	off.followAt(gone, t0.Add(time.Second))
	if n := complete(off); n != record.NumPartitions {
		t.Fatalf("anti-entropy off: complete for %d of %d partitions", n, record.NumPartitions)
	}

	fresh := New(Config{Self: "p2", DB: indextest.Open(t), Logger: slog.New(slog.DiscardHandler)})
	fresh.followAt(gone, t0)
	if n := complete(fresh); n != record.NumPartitions {
		t.Fatalf("a new cluster: complete for %d of %d partitions at once", n, record.NumPartitions)
	}
}

// TestAFreshStoreJoiningAClusterThatExistedIsNotNew: after the last holders
// were forgotten nobody claims anything while the owners left wait for
// their proofs; an empty store that joins then (a replacement node, a wiped
// peer) must not take that for a new cluster and call itself complete with
// nothing in it. The members publish that their stores were in a cluster.
func TestAFreshStoreJoiningAClusterThatExistedIsNotNew(t *testing.T) {
	ms := map[string]gossip.Member{"p4": {Name: "p4", Status: gossip.StatusLeft}}
	for _, n := range []string{"p1", "p2", "p3"} {
		ms[n] = gossip.Member{Name: n, Status: gossip.StatusAlive}
	}
	ms["p1"] = gossip.Member{Name: "p1", Status: gossip.StatusAlive, Tags: map[string]string{view.TagClustered: "1"}}
	v := view.New("p3", ms, placement.Compute([]string{"p1", "p2", "p3"}, 2), 1)
	r := New(Config{Self: "p3", DB: indextest.Open(t), Logger: slog.New(slog.DiscardHandler)})
	r.followAt(v, time.Now())
	for p := 0; p < record.NumPartitions; p++ {
		if r.Complete(record.Partition(p)) {
			t.Fatalf("an empty store joining a cluster that existed is complete for partition %d at once", p)
		}
	}
	if !r.Clustered() {
		t.Fatal("a store that saw another member alive is not marked clustered")
	}
}

// TestCopiesDeletedAfterAProofUndoTheCompletenessItGave: p2 owned a
// partition while the cluster was empty and earned it from p1, lost it when
// p4 joined, and then held the records written to it only as hints (copies
// of a partition it does not own, retired once every owner had them). When
// the failed p4 is reassigned, p2 owns the partition again and a round
// proves it equal to p3, which holds it complete, with the hints counted;
// replication then deletes the hints, as it decided under the placement
// before. p2 must not stay complete (nor vouch), and no proof made before
// the delete may make it complete again: CI's
// TestNewOwnersDoNotVouchForEachOther answered "full" from p2 with nothing
// in the partition. Genesis by proofs waits for proofs after the delete too.
func TestCopiesDeletedAfterAProofUndoTheCompletenessItGave(t *testing.T) {
	all := new(view.Mask)
	for i := range all {
		all[i] = true
	}
	claims := view.TagComplete
	member := func(name string, st gossip.Status, complete bool) gossip.Member {
		m := gossip.Member{Name: name, Status: st}
		if complete {
			m.Tags = map[string]string{claims: all.String()}
		}
		return m
	}
	members := func(ms ...gossip.Member) map[string]gossip.Member {
		out := map[string]gossip.Member{}
		for _, m := range ms {
			out[m.Name] = m
		}
		return out
	}
	alive, failed := gossip.StatusAlive, gossip.StatusFailed
	two := view.New("p2", members(member("p1", alive, true), member("p2", alive, false)),
		placement.Compute([]string{"p1", "p2"}, 3), 1)
	four := view.New("p2", members(member("p1", alive, false), member("p2", alive, false), member("p3", alive, true), member("p4", alive, true)),
		placement.Compute([]string{"p1", "p2", "p3", "p4"}, 3), 2)
	reassigned := view.New("p2", members(member("p1", alive, false), member("p2", alive, false), member("p3", alive, true), member("p4", failed, true)),
		placement.Compute([]string{"p1", "p2", "p3"}, 3), 3)
	var p record.Partition
	for !four.Owns("p3", p) || four.Owns("p2", p) {
		p++ // one p2 loses to p4 and gains back
	}
	g := record.NewGenerator(nil)
	var hints []record.ID
	for len(hints) < 3 {
		if id := g.Next(); id.Partition() == p {
			hints = append(hints, id)
		}
	}
	cur := two
	r := New(Config{Self: "p2", DB: indextest.Open(t), View: func() *view.View { return cur }, Logger: slog.New(slog.DiscardHandler)})
	proof := func(from string, at time.Time) {
		r.proven(antientropy.Proof{Peer: from, At: at, Parts: []record.Partition{p}, Vouched: []bool{true}})
	}
	t0 := time.Now()
	r.followAt(two, t0)
	proof("p1", t0.Add(time.Second))
	if !r.Complete(p) {
		t.Fatalf("partition %d: not complete once proven equal to p1, which holds it complete", p)
	}
	cur = four
	r.followAt(four, t0.Add(2*time.Second))
	if r.Complete(p) || r.vouches(p) {
		t.Fatalf("partition %d: complete or vouching after p2 stopped owning it", p)
	}
	// the records written now reach p2 only as hints; p4 fails and is reassigned
	cur = reassigned
	r.followAt(reassigned, t0.Add(3*time.Second))
	if r.Complete(p) {
		t.Fatalf("partition %d: complete as soon as p2 owns it again, while p3 claims it", p)
	}
	began := t0.Add(4 * time.Second)
	proof("p3", began) // equal to p3 with the hints
	if !r.Complete(p) {
		t.Fatal("the state machine does not make p2 complete by a proof: the test proves nothing")
	}
	ps := r.deleting(hints, t0.Add(5*time.Second)) // replication is about to delete the hints
	if r.Complete(p) || r.vouches(p) {
		t.Fatalf("partition %d: still complete (or vouching) once the copies its proof counted are being deleted", p)
	}
	if persisted := new(Repairer); !persisted.comp.decode(metaOf(t, r)) || persisted.Complete(p) {
		t.Fatalf("partition %d: the store still says complete while its copies are deleted (a crash would keep it)", p)
	}
	// a round that began after the notice, its roots taken before the
	// delete was applied (the hints counted)
	proof("p3", t0.Add(5500*time.Millisecond))
	if r.Complete(p) {
		t.Fatalf("partition %d: made complete by a proof made while its copies were being deleted", p)
	}
	r.deleted(ps, t0.Add(6*time.Second))
	for _, at := range []time.Time{began.Add(500 * time.Millisecond), t0.Add(5500 * time.Millisecond)} {
		proof("p3", at) // rounds that began before the delete ended
		if r.Complete(p) {
			t.Fatalf("partition %d: made complete by a proof that began at %v, before its copies were deleted at %v",
				p, at.Sub(t0), 6*time.Second)
		}
	}
	proof("p3", t0.Add(7*time.Second))
	if !r.Complete(p) {
		t.Fatalf("partition %d: a proof made after the delete does not make it complete", p)
	}

	// genesis by proofs, once the holders are gone, waits likewise
	gone := view.New("p2", members(member("p1", alive, false), member("p2", alive, false), member("p3", alive, false),
		member("p4", gossip.StatusLeft, true)), placement.Compute([]string{"p1", "p2", "p3"}, 3), 1)
	gen := New(Config{Self: "p2", DB: indextest.Open(t), View: func() *view.View { return gone }, Logger: slog.New(slog.DiscardHandler)})
	gen.followAt(view.New("p2", members(member("p1", alive, false), member("p2", alive, false), member("p3", alive, false),
		member("p4", alive, true)), placement.Compute([]string{"p1", "p2", "p3"}, 3), 1), t0)
	gen.followAt(gone, t0.Add(time.Second))
	proveAll(gen, "p1", t0.Add(2*time.Second))
	proveAll(gen, "p3", t0.Add(2*time.Second))
	ps = gen.deleting(hints, t0.Add(3*time.Second))
	proveAll(gen, "p1", t0.Add(3500*time.Millisecond)) // while the delete is under way
	proveAll(gen, "p3", t0.Add(3500*time.Millisecond))
	gen.followAt(gone, t0.Add(3600*time.Millisecond))
	if gen.Complete(p) {
		t.Fatalf("partition %d: complete by genesis on proofs made while its copies were being deleted", p)
	}
	gen.deleted(ps, t0.Add(4*time.Second))
	gen.followAt(gone, t0.Add(4500*time.Millisecond))
	if gen.Complete(p) {
		t.Fatalf("partition %d: complete by genesis on proofs made before its copies were deleted", p)
	}
	proveAll(gen, "p1", t0.Add(5*time.Second))
	proveAll(gen, "p3", t0.Add(5*time.Second))
	gen.followAt(gone, t0.Add(6*time.Second))
	for q := 0; q < record.NumPartitions; q++ {
		if !gen.Complete(record.Partition(q)) {
			t.Fatalf("partition %d: not complete by genesis on proofs made after the delete", q)
		}
	}
}

// metaOf returns the completeness r saved in its store.
func metaOf(t *testing.T, r *Repairer) []byte {
	t.Helper()
	b, err := r.cfg.DB.GetMeta(metaComplete)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Two saves at once must not store an older state last: the state stored
// once both returned is the state in memory.
func TestConcurrentSavesStoreTheNewestState(t *testing.T) {
	r := New(Config{Self: "p1", DB: indextest.Open(t), Logger: slog.New(slog.DiscardHandler)})
	c := &r.comp
	for round := range 300 {
		var wg sync.WaitGroup
		for g := range 3 {
			wg.Go(func() {
				c.mu.Lock()
				c.mu.complete[(round*3+g)%record.NumPartitions] = round%2 == 0
				c.mu.witness[g] = !c.mu.witness[g]
				c.mu.dirty = true
				c.mu.Unlock()
				r.saveCompleteness()
			})
		}
		wg.Wait()
		c.mu.Lock()
		want := c.encodeLocked()
		c.mu.Unlock()
		if got := metaOf(t, r); !bytes.Equal(got, want) {
			t.Fatalf("round %d: the store holds an older state than memory after every save returned", round)
		}
	}
}

// Work that waits on a peer that is down is not work cut short: a round
// that meets it says so (blocked), and the next try backs off instead of
// running rounds in a loop for as long as the peer is down.
func TestWorkWaitingOnADownPeerBacksOff(t *testing.T) {
	claims := view.TagComplete
	all := new(view.Mask)
	for i := range all {
		all[i] = true
	}
	ms := map[string]gossip.Member{
		"p1": {Name: "p1", Status: gossip.StatusFailed, Tags: map[string]string{claims: all.String()}},
		"p2": {Name: "p2", Status: gossip.StatusAlive},
	}
	v := view.New("p2", ms, placement.Compute([]string{"p1", "p2"}, 1), 1)
	db := indextest.Open(t)
	var p record.Partition
	for v.Owns("p2", p) {
		p++ // one p1 owns alone
	}
	g := record.NewGenerator(nil)
	id := g.Next()
	for id.Partition() != p {
		id = g.Next()
	}
	rec := &record.Record{ID: id, Message: "held for p1"}
	if _, err := db.Write(t.Context(), []index.Entry{{ID: id, Data: rec.AppendEncode(nil)}}, index.OriginLocal); err != nil {
		t.Fatal(err)
	}
	owed := new(view.Mask)
	owed[p] = true
	debts := map[string]Debt{"p1": {Parts: *owed, Gen: 1}}
	r := New(Config{Self: "p2", DB: db, View: func() *view.View { return v }, Logger: slog.New(slog.DiscardHandler),
		Debts: func() map[string]Debt { return debts }, Settle: func(string, *view.Mask, uint64) bool { return true }})
	if _, left := r.handOver(t.Context(), v, time.Minute); left.more || !left.blocked {
		t.Fatalf("hand-over to an owner that is down: %+v, want blocked and not more (more runs rounds in a loop)", left)
	}
	if _, left := r.settleDebts(t.Context(), v, time.Minute); left.more || !left.blocked {
		t.Fatalf("a debt to a peer that is down: %+v, want blocked and not more", left)
	}
	if _, left := r.round(t.Context(), request{}); left.more || !left.blocked {
		t.Fatalf("round: %+v, want blocked and not more", left)
	}
	var waits []time.Duration
	var d time.Duration
	for range 8 {
		d = retryAfter(d, 30*time.Second)
		waits = append(waits, d)
	}
	if waits[0] != time.Second || waits[1] != 2*time.Second || waits[7] != 30*time.Second {
		t.Fatalf("retries after %v: want 1 s, doubling, at most the interval", waits)
	}
	if got := retryAfter(0, 200*time.Millisecond); got != 200*time.Millisecond {
		t.Fatalf("a retry waits %v with an interval of 200 ms: longer than the interval", got)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// An owner that gossip shows alive but whose calls fail slowly (dials that
// time out) uses up the hand-over's budget: that pass is blocked, not cut
// short, or the next round would start at once and spend it the same way.
func TestHandOverToAnOwnerWhoseCallsFailSlowlyBacksOff(t *testing.T) {
	ms := map[string]gossip.Member{
		"p1": {Name: "p1", Status: gossip.StatusAlive, Tags: map[string]string{view.TagAPI: "192.0.2.1:1"}},
		"p2": {Name: "p2", Status: gossip.StatusAlive, Tags: map[string]string{view.TagAPI: "192.0.2.2:1"}},
	}
	v := view.New("p2", ms, placement.Compute([]string{"p1", "p2"}, 1), 1)
	db := indextest.Open(t)
	g := record.NewGenerator(nil)
	held := map[record.Partition]bool{}
	var entries []index.Entry
	for len(held) < 20 {
		id := g.Next()
		if v.Owns("p2", id.Partition()) {
			continue
		}
		held[id.Partition()] = true
		rec := &record.Record{ID: id, Message: "held for p1"}
		entries = append(entries, index.Entry{ID: id, Data: rec.AppendEncode(nil)})
	}
	if _, err := db.Write(t.Context(), entries, index.OriginLocal); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	slow := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		calls.Add(1)
		select {
		case <-time.After(30 * time.Millisecond):
		case <-req.Context().Done():
		}
		return nil, errors.New("dial tcp: i/o timeout")
	})
	lc := link.New(link.Config{Self: "p2", Scheme: func() string { return "http://" }, View: func() *view.View { return v }, Transport: slow})
	r := New(Config{Self: "p2", DB: db, View: func() *view.View { return v }, Link: lc, Logger: slog.New(slog.DiscardHandler)})
	_, left := r.handOver(t.Context(), v, 150*time.Millisecond)
	if calls.Load() < 3 {
		t.Fatalf("%d calls to the owner: the test proves nothing", calls.Load())
	}
	if left.more || !left.blocked {
		t.Fatalf("a hand-over whose rounds failed until its budget was spent: %+v, want blocked and not more", left)
	}
}
