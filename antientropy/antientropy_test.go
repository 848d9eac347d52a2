package antientropy

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/logmesh/logmesh/record"
)

func allPartitions() []record.Partition {
	ps := make([]record.Partition, record.NumPartitions)
	for i := range ps {
		ps[i] = record.Partition(i)
	}
	return ps
}

func mkRec(at time.Time, i int) Rec {
	id := record.NewGenerator(func() time.Time { return at }).Next()
	r := &record.Record{ID: id, Message: fmt.Sprintf("record %d", i)}
	return Rec{ID: id, Data: r.AppendEncode(nil)}
}

// syncAll runs rounds until nothing is left to do.
func syncAll(t *testing.T, tr *direct, from string, to string, pull bool) (sent, received int) {
	t.Helper()
	for i := 0; i < 20; i++ {
		res, err := tr.peers[from].Sync(context.Background(), tr, to, allPartitions(), pull)
		if err != nil {
			t.Fatal(err)
		}
		sent += res.Sent
		received += res.Received
		if !res.More && res.Sent == 0 && res.Received == 0 {
			return
		}
	}
	t.Fatalf("%s and %s did not converge in 20 rounds", from, to)
	return
}

func TestRandomWritesToRandomReplicasConverge(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			stores := map[string]*memStore{"a": newMem(), "b": newMem(), "c": newMem()}
			tr := &direct{peers: map[string]*Peer{}}
			for n, s := range stores {
				tr.peers[n] = New(Config{Store: s, MaxMessageBytes: 64 << 10}) // small messages: many rounds
			}
			names := []string{"a", "b", "c"}
			union := map[record.ID]bool{}
			base := time.Now().Add(-6 * time.Hour)
			for i := 0; i < 1500; i++ {
				r := mkRec(base.Add(time.Duration(rng.Int64N(int64(6*time.Hour)))), i)
				union[r.ID] = true
				mask := 1 + rng.IntN(7) // a non-empty subset of a, b, c
				for k, n := range names {
					if mask&(1<<k) != 0 {
						stores[n].Put(context.Background(), []Rec{r})
					}
				}
			}
			syncAll(t, tr, "a", "b", true)
			syncAll(t, tr, "a", "c", true)
			syncAll(t, tr, "b", "c", true)
			want := make([]record.ID, 0, len(union))
			for id := range union {
				want = append(want, id)
			}
			slices.SortFunc(want, record.Compare)
			for _, n := range names {
				if got := stores[n].ids(); !slices.Equal(got, want) {
					t.Fatalf("%s holds %d records, the union is %d", n, len(got), len(want))
				}
			}
			// and a round between converged replicas proves every partition equal
			res, err := tr.peers["a"].Sync(context.Background(), tr, "c", allPartitions(), true)
			if err != nil || len(res.Equal) != record.NumPartitions || res.Sent+res.Received != 0 {
				t.Fatalf("round after convergence: %d equal partitions, %d moved, %v", len(res.Equal), res.Sent+res.Received, err)
			}
		})
	}
}

func TestRepairMovesExactlyTheMissingRecords(t *testing.T) {
	a, b := newMem(), newMem()
	tr := &direct{peers: map[string]*Peer{"a": New(Config{Store: a}), "b": New(Config{Store: b})}}
	now := time.Now().Add(-time.Hour)
	var missingOnB, missingOnA int
	for i := 0; i < 5000; i++ {
		r := mkRec(now.Add(time.Duration(i)*time.Millisecond), i)
		switch {
		case i%100 == 1:
			a.Put(context.Background(), []Rec{r})
			missingOnB++
		case i%100 == 2:
			b.Put(context.Background(), []Rec{r})
			missingOnA++
		default:
			a.Put(context.Background(), []Rec{r})
			b.Put(context.Background(), []Rec{r})
		}
	}
	res, err := tr.peers["a"].Sync(context.Background(), tr, "b", allPartitions(), true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != missingOnB || res.Received != missingOnA || res.More {
		t.Fatalf("one round sent %d (want %d) and received %d (want %d), more=%v",
			res.Sent, missingOnB, res.Received, missingOnA, res.More)
	}
	if !slices.Equal(a.ids(), b.ids()) {
		t.Fatal("replicas differ after one round")
	}
}

func TestHandOverPushesOnly(t *testing.T) {
	old, owner := newMem(), newMem()
	tr := &direct{peers: map[string]*Peer{"old": New(Config{Store: old}), "owner": New(Config{Store: owner})}}
	now := time.Now().Add(-time.Hour)
	for i := 0; i < 300; i++ {
		r := mkRec(now.Add(time.Duration(i)*time.Second), i)
		if i%3 != 0 {
			old.Put(context.Background(), []Rec{r})
		}
		if i%2 == 0 {
			owner.Put(context.Background(), []Rec{r})
		}
	}
	before := len(old.ids())
	syncAll(t, tr, "old", "owner", false)
	if len(old.ids()) != before {
		t.Fatal("a hand-over pulled records into the old holder")
	}
	held := map[record.ID]bool{}
	for _, id := range owner.ids() {
		held[id] = true
	}
	for _, id := range old.ids() {
		if !held[id] {
			t.Fatalf("owner lacks %s after the hand-over", id)
		}
	}
}

func TestExpiredWindowsAreNeverCompared(t *testing.T) {
	a, b := newMem(), newMem()
	tr := &direct{peers: map[string]*Peer{"a": New(Config{Store: a}), "b": New(Config{Store: b})}}
	now := time.Now()
	oldRec := mkRec(now.Add(-10*time.Hour), 1)
	newRec := mkRec(now.Add(-time.Minute), 2)
	a.Put(context.Background(), []Rec{oldRec, newRec})
	b.cutoff = record.WindowOf(now.Add(-2 * time.Hour).UnixMilli()) // b's retention dropped the old window
	syncAll(t, tr, "a", "b", true)
	if got := b.ids(); len(got) != 1 || got[0] != newRec.ID {
		t.Fatalf("b holds %v; the expired record must not come back", got)
	}
}

func TestOneRecordDifferenceThatIsNotOneRecord(t *testing.T) {
	// same bucket: a holds two records b lacks, b holds one a lacks: the
	// counts differ by one but no single record explains it
	a, b := newMem(), newMem()
	tr := &direct{peers: map[string]*Peer{"a": New(Config{Store: a}), "b": New(Config{Store: b})}}
	var recs []Rec
	now := time.Now().Add(-time.Hour)
	for i := 0; len(recs) < 3; i++ {
		r := mkRec(now.Add(time.Duration(i)*time.Millisecond), i)
		if r.ID.Bucket() == 7 {
			recs = append(recs, r)
		}
	}
	a.Put(context.Background(), recs[:2])
	b.Put(context.Background(), recs[2:])
	syncAll(t, tr, "b", "a", true) // b initiates: a has one record more
	if len(a.ids()) != 3 || len(b.ids()) != 3 {
		t.Fatalf("a %d, b %d records; want 3 each", len(a.ids()), len(b.ids()))
	}
}

func TestInSyncRoundIsCheapOnTheWire(t *testing.T) {
	a, b := newMem(), newMem()
	tr := &direct{peers: map[string]*Peer{"a": New(Config{Store: a}), "b": New(Config{Store: b})}}
	now := time.Now().Add(-3 * time.Hour)
	for i := 0; i < 3000; i++ {
		r := mkRec(now.Add(time.Duration(i)*time.Second), i)
		a.Put(context.Background(), []Rec{r})
		b.Put(context.Background(), []Rec{r})
	}
	tr.bytes = 0
	res, err := tr.peers["a"].Sync(context.Background(), tr, "b", allPartitions(), true)
	if err != nil || len(res.Equal) != record.NumPartitions || tr.calls != 1 {
		t.Fatalf("in-sync round: %d equal, %d calls, %v", len(res.Equal), tr.calls, err)
	}
	if tr.bytes > 64<<10 {
		t.Fatalf("in-sync round moved %d bytes", tr.bytes)
	}
}

func FuzzMessages(f *testing.F) {
	r := &RootsRequest{Cutoff: 5, Roots: []PartRoot{{P: 3, Root: Root{1, 2}}}}
	b, _ := r.MarshalBinary()
	f.Add(byte(0), b)
	br := &BucketsReply{Differing: 2, Records: []Rec{{Data: []byte("x")}}, SendOne: []OneRef{{Ref: BucketRef{W: 1, B: 9}}},
		IDLists: []BucketIDs{{Ref: BucketRef{W: 1, B: 2}, IDs: []record.ID{{1}}}}}
	b, _ = br.MarshalBinary()
	f.Add(byte(3), b)
	f.Fuzz(func(t *testing.T, kind byte, in []byte) {
		type msg interface {
			MarshalBinary() ([]byte, error)
			UnmarshalBinary([]byte) error
		}
		var m, again msg
		switch kind % 6 {
		case 0:
			m, again = &RootsRequest{}, &RootsRequest{}
		case 1:
			m, again = &RootsReply{}, &RootsReply{}
		case 2:
			m, again = &BucketsRequest{}, &BucketsRequest{}
		case 3:
			m, again = &BucketsReply{}, &BucketsReply{}
		case 4:
			m, again = &ExchangeRequest{}, &ExchangeRequest{}
		default:
			m, again = &ExchangeReply{}, &ExchangeReply{}
		}
		if m.UnmarshalBinary(in) != nil {
			return
		}
		out, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if err := again.UnmarshalBinary(out); err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
	})
}

// sum0Blind hides the first sum of every digest, so that shortened digests
// (count and first sum) of different sets compare equal: a stand-in for a
// 64-bit collision.
type sum0Blind struct{ *memStore }

func (s sum0Blind) WindowDigests(w record.Window, p record.Partition) ([record.BucketsPerPartition]record.Digest, uint64) {
	ds, gen := s.memStore.WindowDigests(w, p)
	for i := range ds {
		ds[i].Sum0 = 0
	}
	return ds, gen
}

func TestShortenedCollisionFallsBackToFullComparison(t *testing.T) {
	a, b := newMem(), newMem()
	pa, pb := New(Config{Store: sum0Blind{a}}), New(Config{Store: sum0Blind{b}})
	tr := &direct{peers: map[string]*Peer{"a": pa, "b": pb}}
	var x, y Rec
	now := time.Now().Add(-time.Hour)
	for i := 0; x.Data == nil || y.Data == nil; i++ {
		r := mkRec(now.Add(time.Duration(i)*time.Millisecond), i)
		switch {
		case r.ID.Bucket() == 33 && x.Data == nil:
			x = r
		case r.ID.Bucket() == 33:
			y = r
		}
	}
	a.Put(context.Background(), []Rec{x})
	b.Put(context.Background(), []Rec{y})
	res, err := pa.Sync(context.Background(), tr, "b", allPartitions(), true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 1 || res.Received != 1 {
		t.Fatalf("sent %d received %d; the full comparison must find the swapped records", res.Sent, res.Received)
	}
}
