package index

// Tests from a review of the write path beside sealed and moved slices:
// each compares a store that seals with one that never does, given the
// same operations (revPair), or breaks one rule of the committer.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/logmesh/logmesh/record"
)

// revPair is a store that seals and a reference that never does, given the
// same operations.
type revPair struct {
	t        *testing.T
	db, ref  *DB
	dir      string
	all      []Entry
	mut      []func(*Config)
	reopened int
}

func newRevPair(t *testing.T, mut ...func(*Config)) *revPair {
	dir := t.TempDir()
	return &revPair{t: t, db: openTest(t, dir, mut...), ref: openTest(t, t.TempDir()), dir: dir, mut: mut}
}

// write writes es from origin into both, and wants the same result of both.
func (p *revPair) write(es []Entry, origin Origin) WriteResult {
	p.t.Helper()
	r1, err1 := p.db.Write(context.Background(), es, origin)
	r2, err2 := p.ref.Write(context.Background(), es, origin)
	if err1 != nil || err2 != nil {
		p.t.Fatalf("write: %v / ref %v", err1, err2)
	}
	if r1.Written != r2.Written || r1.Duplicates != r2.Duplicates {
		p.t.Fatalf("write of %d from origin %d: sealed store %+v, reference %+v", len(es), origin, r1, r2)
	}
	p.all = append(p.all, es...)
	return r1
}

func (p *revPair) del(ids []record.ID) WriteResult {
	p.t.Helper()
	r1, err1 := p.db.Delete(context.Background(), ids)
	r2, err2 := p.ref.Delete(context.Background(), ids)
	if err1 != nil || err2 != nil {
		p.t.Fatalf("delete: %v / ref %v", err1, err2)
	}
	if r1.Written != r2.Written {
		p.t.Fatalf("delete of %d: sealed store %+v, reference %+v", len(ids), r1, r2)
	}
	return r1
}

func (p *revPair) compare(what string) {
	p.t.Helper()
	compareReads(p.t, what, readEverything(p.t, p.ref, p.all, 11), readEverything(p.t, p.db, p.all, 11))
	checkRunRules(p.t, p.db)
	digestsAgree(p.t, p.db)
	if a, b := p.db.Digest(), p.ref.Digest(); a != b {
		p.t.Fatalf("%s: digest %+v, reference %+v", what, a, b)
	}
	if sr, err := p.db.Scrub(context.Background(), 0); err != nil || sr.Buckets != 0 || sr.DamagedBlocks != 0 {
		p.t.Fatalf("%s: scrub %+v, %v", what, sr, err)
	}
	for _, w := range p.ref.AllWindows() {
		for part := range record.NumPartitions {
			if a, _ := p.db.WindowDigests(w, record.Partition(part)); a != func() [record.BucketsPerPartition]record.Digest {
				b, _ := p.ref.WindowDigests(w, record.Partition(part))
				return b
			}() {
				p.t.Fatalf("%s: window %d partition %d: the digests differ from the reference", what, w, part)
			}
			first := record.Bucket(part * record.BucketsPerPartition)
			var a, b []record.ID
			_ = p.db.PartitionIDs(w, record.Partition(part), first, first+record.BucketsPerPartition, func(id record.ID) error { a = append(a, id); return nil })
			_ = p.ref.PartitionIDs(w, record.Partition(part), first, first+record.BucketsPerPartition, func(id record.ID) error { b = append(b, id); return nil })
			if !slices.Equal(a, b) {
				p.t.Fatalf("%s: partition ids of window %d partition %d: %d, reference %d", what, w, part, len(a), len(b))
			}
		}
	}
}

func (p *revPair) reopen() {
	p.t.Helper()
	if err := p.db.Close(); err != nil {
		p.t.Fatal(err)
	}
	p.db = openTest(p.t, p.dir, p.mut...)
	p.reopened++
}

func (p *revPair) drop() {
	p.t.Helper()
	p.db.allowDiscard()
	if err := p.db.dropMoved(true); err != nil {
		p.t.Fatal(err)
	}
}

// resend: every record written so far, sent again from origin, is a
// duplicate in both.
func (p *revPair) resend(what string, origin Origin) {
	p.t.Helper()
	seen := map[record.ID]bool{}
	var es []Entry
	for _, e := range p.all {
		if !seen[e.ID] {
			seen[e.ID] = true
			es = append(es, e)
		}
	}
	r1, err := p.db.Write(context.Background(), es, origin)
	if err != nil {
		p.t.Fatal(err)
	}
	r2, err := p.ref.Write(context.Background(), es, origin)
	if err != nil {
		p.t.Fatal(err)
	}
	if r1.Written != r2.Written {
		p.t.Fatalf("%s: resent %d records (origin %d): sealed store wrote %d, reference %d", what, len(es), origin, r1.Written, r2.Written)
	}
}

func revRun(w record.Window, s uint8, p record.Partition, n, step int, tag string) []Entry {
	var es []Entry
	for i := range n {
		es = append(es, entryAt(sliceStart(w, s)+int64(step*i), p, fmt.Sprintf("%s %d word%d", tag, i, i%20)))
	}
	return es
}

// lateIn mints records between those of es (inside their blocks' ranges).
func lateIn(es []Entry, every int, tag string) []Entry {
	var out []Entry
	for i := 0; i+1 < len(es); i += every {
		out = append(out, entryAt(es[i].ID.Millis()+1, es[i].ID.Partition(), fmt.Sprintf("%s %d word7", tag, i)))
	}
	return out
}

// A moved slice whose late records are sealed in place, with a late record
// and a delete arriving between the sealer's snapshot and its commit.
func TestWritePathLateRecordsIntoAMovedSliceMidPass(t *testing.T) {
	for _, change := range []string{"late inside", "delete planned", "delete in block", "late after", "none"} {
		t.Run(change, func(t *testing.T) {
			p := newRevPair(t, func(c *Config) { c.SealBlockRecords = 8; c.MaintenanceInterval = time.Hour })
			w := record.WindowOf(time.Now().UnixMilli() - 3*record.WindowMillis)
			const s = 9
			es := revRun(w, s, 5, 200, 100, "orig")
			p.write(es, OriginLocal)
			moveAll(t, p.db)
			if p.db.movedNow(w) == 0 {
				t.Fatal("not moved")
			}
			// late records into the moved blocks: they unseal them
			late := lateIn(es[:100], 7, "late")
			p.write(late, OriginRemote)
			if p.db.Stats().BlocksUnsealed == 0 {
				t.Fatal("nothing unsealed")
			}
			p.compare("after late records")
			runs, _, err := p.db.looseRuns(w, s, s+1)
			if err != nil || len(runs) == 0 {
				t.Fatalf("loose runs %v %v", runs, err)
			}
			b := p.db.planBatch(w, runs, sealInPlace)
			if b.err != nil {
				t.Fatal(b.err)
			}
			switch change {
			case "late inside":
				p.write(lateIn(es[10:30], 3, "later"), OriginRemote)
			case "delete planned":
				p.del([]record.ID{late[2].ID, es[15].ID})
			case "delete in block":
				p.del([]record.ID{es[150].ID})
			case "late after":
				p.write(lateIn(es[150:170], 4, "later"), OriginRemote)
			}
			err = p.db.inCommitter(func() error { _, err := p.db.applySeals(b.plans); return err })
			b.release()
			if err != nil {
				t.Fatal(err)
			}
			p.compare("after the seal")
			p.resend("after the seal", OriginRemote)
			p.reopen()
			p.compare("after a reopen")
			p.resend("after a reopen", OriginRemote)
			p.drop()
			moveAll(t, p.db)
			p.compare("sealed again")
			p.resend("sealed again", OriginLocalRetry)
		})
	}
}

// The same ID sent twice by replication: the first copy ends in a moved
// block, the second arrives after the switch (before and after the drop of
// the loose records, across a reopen).
func TestWritePathDuplicatesAfterAMove(t *testing.T) {
	p := newRevPair(t, func(c *Config) { c.SealBlockRecords = 6; c.MaintenanceInterval = time.Hour })
	w := record.WindowOf(time.Now().UnixMilli() - 3*record.WindowMillis)
	var es []Entry
	for _, s := range []uint8{0, 7, 59} {
		for _, part := range []record.Partition{1, 200} {
			es = append(es, revRun(w, s, part, 60, 997, "r")...)
		}
	}
	p.write(es, OriginRemote)
	p.resend("before the move", OriginRemote)
	moveAll(t, p.db)
	p.resend("moved", OriginRemote)
	p.resend("moved, local retry", OriginLocalRetry)
	p.compare("moved")
	p.reopen()
	p.resend("moved, reopened", OriginRemote)
	p.drop()
	p.resend("dropped", OriginRemote)
	// late records unseal some blocks, then the duplicates again
	p.write(lateIn(es, 5, "late"), OriginRemote)
	p.resend("unsealed", OriginRemote)
	p.compare("unsealed")
	p.reopen()
	p.resend("unsealed, reopened", OriginRemote)
	moveAll(t, p.db)
	p.resend("sealed again", OriginRemote)
	p.compare("sealed again")
}

// Deletes of records in the blocks of a moved slice, reopened before the
// loose records are dropped; then late records and a reopen.
func TestWritePathDeletesInMovedBlocksAcrossAReopen(t *testing.T) {
	p := newRevPair(t, func(c *Config) { c.SealBlockRecords = 10; c.MaintenanceInterval = time.Hour })
	w := record.WindowOf(time.Now().UnixMilli() - 2*record.WindowMillis)
	es := append(revRun(w, 3, 8, 120, 500, "a"), revRun(w, 4, 8, 120, 500, "b")...)
	p.write(es, OriginLocal)
	moveAll(t, p.db)
	var del []record.ID
	for i := 0; i < len(es); i += 9 {
		del = append(del, es[i].ID)
	}
	del = append(del, es[len(es)-1].ID, es[0].ID)
	slices.SortFunc(del, record.Compare)
	del = slices.Compact(del)
	p.del(del)
	p.compare("deleted")
	p.reopen()
	p.compare("deleted, reopened")
	p.write(del2entries(es, del), OriginRemote) // the deleted ones replicated back
	p.compare("written again")
	p.reopen()
	p.compare("written again, reopened")
	p.drop()
	p.compare("dropped")
	p.write(lateIn(es, 3, "late"), OriginRemote)
	p.reopen()
	p.compare("late, reopened")
	p.resend("late, reopened", OriginRemote)
	moveAll(t, p.db)
	p.compare("sealed again")
	p.reopen()
	p.compare("sealed again, reopened")
}

func del2entries(es []Entry, ids []record.ID) []Entry {
	var out []Entry
	for _, e := range es {
		if slices.Contains(ids, e.ID) {
			out = append(out, e)
		}
	}
	return out
}

// The first seal transaction fails (as on a full disk); later ones succeed.
// The marker must name every slice with blocks, across a reopen.
func TestWritePathMarkerWhenTheFirstSealTransactionFails(t *testing.T) {
	for _, failAt := range []int{1, 2, 3, 4} {
		t.Run(fmt.Sprint(failAt), func(t *testing.T) {
			p := newRevPair(t, func(c *Config) { c.SealBlockRecords = 4; c.MaintenanceInterval = time.Hour })
			w := record.WindowOf(time.Now().UnixMilli() - 3*record.WindowMillis)
			var es []Entry
			for _, s := range []uint8{2, 5} {
				es = append(es, revRun(w, s, 4, 40, 1000, "x")...)
			}
			p.write(es, OriginLocal)
			var n atomic.Int32
			sealTxnFault = func() error {
				if int(n.Add(1)) == failAt {
					return errors.New("disk full")
				}
				return nil
			}
			t.Cleanup(func() { sealTxnFault = nil })
			err := p.db.sealWindow(w, 0, uint8(slicesPerWindow))
			t.Logf("first pass: %v (moved %x)", err, p.db.movedNow(w))
			p.compare("after a failed pass")
			p.write(lateIn(es, 3, "late"), OriginRemote)
			p.compare("late after a failed pass")
			if err := p.db.sealWindow(w, 0, uint8(slicesPerWindow)); err != nil {
				t.Fatal(err)
			}
			p.compare("after a pass")
			p.write(lateIn(es, 2, "later"), OriginRemote)
			p.compare("later")
			if err := p.db.sealWindow(w, 0, uint8(slicesPerWindow)); err != nil {
				t.Fatal(err)
			}
			p.reopen()
			p.compare("reopened")
			p.write(lateIn(es[1:], 2, "latest"), OriginRemote)
			p.compare("latest after reopen")
			p.resend("latest after reopen", OriginRemote)
		})
	}
}

// Retention drops the window between the copies of a move and its switch.
func TestWritePathRetentionDropsAWindowMidMove(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Now().UnixMilli())
	now := func() time.Time { return time.UnixMilli(clock.Load()) }
	dir := t.TempDir()
	db := openTest(t, dir, func(c *Config) {
		c.SealBlockRecords = 8
		c.MaintenanceInterval = time.Hour
		c.Retention = 3 * time.Hour
		c.Now = now
	})
	w := record.WindowOf(clock.Load() - 2*record.WindowMillis)
	es := append(revRun(w, 1, 2, 100, 300, "a"), revRun(w, 2, 2, 100, 300, "b")...)
	if _, err := db.Write(context.Background(), es, OriginLocal); err != nil {
		t.Fatal(err)
	}
	// a later window that stays
	w2 := w + 1
	keep := revRun(w2, 1, 2, 50, 300, "keep")
	if _, err := db.Write(context.Background(), keep, OriginLocal); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { moveBeforeSwitch = nil })
	moveBeforeSwitch = func(mw record.Window, s uint8) {
		if mw != w {
			return
		}
		clock.Add(2 * record.WindowMillis)
		if err := db.expire(); err != nil {
			t.Errorf("expire: %v", err)
		}
	}
	err := db.sealWindow(w, 0, uint8(slicesPerWindow))
	moveBeforeSwitch = nil
	t.Logf("pass: %v, moved %x, cutoff %d w %d", err, db.movedNow(w), db.cutoff(), w)
	if db.mayHaveBlocks(w) {
		t.Errorf("window %d dropped but still noted as holding blocks", w)
	}
	if err := db.expire(); err != nil {
		t.Fatal(err)
	}
	n := keysUnder(t, db, windowPrefix(w))
	if n != 0 {
		t.Errorf("window %d dropped, but %d keys stay under it", w, n)
	}
	ref := openTest(t, t.TempDir(), func(c *Config) { c.Now = now; c.Retention = 3 * time.Hour })
	if _, err := ref.Write(context.Background(), keep, OriginLocal); err != nil {
		t.Fatal(err)
	}
	if err := db.sealWindow(w2, 0, uint8(slicesPerWindow)); err != nil {
		t.Fatal(err)
	}
	compareReads(t, "after the drop", readEverything(t, ref, keep, 3), readEverything(t, db, keep, 3))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir, func(c *Config) { c.Now = now; c.Retention = 3 * time.Hour })
	compareReads(t, "after a reopen", readEverything(t, ref, keep, 3), readEverything(t, db, keep, 3))
	if n := keysUnder(t, db, windowPrefix(w)); n != 0 {
		t.Errorf("window %d dropped, but %d keys stay under it after a reopen", w, n)
	}
}

// threeSealedBlocks writes a run of partition 5 and seals it into three
// blocks of a quarter of what a Badger transaction takes each (per).
func threeSealedBlocks(t *testing.T, db *DB) ([]Entry, int) {
	t.Helper()
	per := int(db.bdb.MaxBatchCount() / 4)
	es := oneRun(t, db, 3*per, 5)
	w, s := es[0].ID.Window(), sliceOf(es[0].ID.Millis())
	if _, err := db.sealRun(w, s, 5, per, 0); err != nil {
		t.Fatal(err)
	}
	if checkRunRules(t, db) != 3 {
		t.Fatalf("want 3 blocks of %d records", per)
	}
	return es, per
}

// A delete request whose first ID (never stored) lies in block B1, whose
// second is in block B2, and whose third is a record of B1: the unseal of
// B2 has no room beside B1's, so the transaction holding B1's unseal is
// sent with no delete in it, that is dropped; the third ID must still
// unseal B1 (builder.unseal: a block unsealed by an earlier transaction of
// the group is read again) and be deleted.
func TestWritePathADeleteComesBackToABlockWhoseUnsealWasDropped(t *testing.T) {
	db := openTest(t, t.TempDir())
	es, per := threeSealedBlocks(t, db)
	missing := idIn(es[5].ID.Millis()+1, 5)
	if missing == es[6].ID {
		t.Fatal("missing is stored")
	}
	ids := []record.ID{missing, es[per+5].ID, es[10].ID}
	res, err := db.Delete(context.Background(), ids)
	if err != nil || res.Written != 2 {
		t.Errorf("delete = %+v, %v; want 2 deleted", res, err)
	}
	for _, id := range ids {
		if _, err := db.Get(id); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: Get after its delete: %v", id, err)
		}
	}
	checkRunRules(t, db)
	digestsAgree(t, db)
}

// One replicated request: a late record into each of three blocks of
// maxBatchCount/4 small records (their unseals fit one transaction by
// bytes), then more new records, outside every block, than a transaction
// takes: the builder must count the unsealed records in the transaction
// (builder.extra) and split it, or Badger refuses it as too big.
func TestWritePathUnsealedRecordsCountInTheTransaction(t *testing.T) {
	db := openTest(t, t.TempDir())
	maxCount := int(db.bdb.MaxBatchCount())
	es, per := threeSealedBlocks(t, db)
	var req []Entry
	for _, i := range []int{3, per + 3, 2*per + 3} {
		id := idIn(es[i].ID.Millis()+1, 5)
		req = append(req, Entry{ID: id, Data: (&record.Record{ID: id}).AppendEncode(nil)})
	}
	// new records of another partition: no block covers them
	ms := es[0].ID.Millis()
	for i := range maxCount {
		id := idIn(ms+int64(i%SliceMillis), 9)
		if slices.ContainsFunc(req, func(e Entry) bool { return e.ID == id }) {
			continue
		}
		req = append(req, Entry{ID: id, Data: (&record.Record{ID: id}).AppendEncode(nil)})
	}
	res, err := db.Write(context.Background(), req, OriginRemote)
	if err != nil || res.Written+res.Duplicates != len(req) {
		t.Fatalf("write of %d = %+v, %v", len(req), res, err)
	}
	checkRunRules(t, db)
	digestsAgree(t, db)
}

// The same count, without any block: a WriteMeta whose records fill a
// transaction by count stores its meta entry beside them (builder.add),
// which fits does not count either.
func TestWritePathWriteMetaFillingATransaction(t *testing.T) {
	db := openTest(t, t.TempDir())
	maxCount := int(db.bdb.MaxBatchCount())
	ms := time.Now().Add(-2 * time.Hour).UnixMilli()
	var req []Entry
	for i := range maxCount {
		id := idIn(ms+int64(i), 9)
		req = append(req, Entry{ID: id, Data: (&record.Record{ID: id}).AppendEncode(nil)})
	}
	t.Logf("records of %d bytes, %d of them (Badger takes %d entries, %d bytes)", len(req[0].Data), len(req), maxCount, db.bdb.MaxBatchSize())
	res, err := db.WriteMeta(context.Background(), req, OriginLocal, "k", []byte("v"), 0)
	if err != nil || res.Written != len(req) {
		t.Fatalf("WriteMeta of %d = %+v, %v", len(req), res, err)
	}
}

// Copies of the records of a large block arrive while another write's
// unseal of that block is committed: the duplicate check reads what is
// committed, and Badger applies a transaction's entries one by one, so it
// must not run while the unseal is in flight (builder.send drains).
func TestWritePathDuplicatesBesideTheUnsealOfALargeBlock(t *testing.T) {
	db := openTest(t, t.TempDir())
	per := int(db.bdb.MaxBatchCount() / 4)
	const blocks = 8
	es := oneRun(t, db, blocks*per, 5)
	w, s := es[0].ID.Window(), sliceOf(es[0].ID.Millis())
	if _, err := db.sealRun(w, s, 5, per, 0); err != nil {
		t.Fatal(err)
	}
	var written atomic.Int64
	for b := range blocks {
		blk := es[b*per : (b+1)*per]
		late := entryAt(blk[per/2].ID.Millis()+1, 5, "late")
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = db.Write(context.Background(), []Entry{late}, OriginRemote)
		}()
		// copies in small requests, each its own group as often as not
		for i := 0; i < per; i += 64 {
			res, err := db.Write(context.Background(), blk[i:min(i+64, per)], OriginRemote)
			if err != nil {
				t.Fatal(err)
			}
			written.Add(int64(res.Written))
		}
		<-done
	}
	if n := written.Load(); n > 0 {
		t.Errorf("%d records already stored were written again as new", n)
	}
	digestsAgree(t, db)
	checkRunRules(t, db)
}

// A writer sends replicated copies (duplicates), late records, deletes,
// deletes then copies again, while the sealer moves and seals slices of the
// window pass after pass, with drops of the moved slices' loose records
// between passes. Every operation must report what it reports on a store
// that never seals, and the store must read as that store.
func TestWritePathRandomReplicationBesideTheSealer(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { revRandom(t, seed) })
	}
}

type revOp struct {
	write  []Entry
	origin Origin
	del    []record.ID
	res    WriteResult
}

func revRandom(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 5))
	dir := t.TempDir()
	mut := func(c *Config) {
		c.SealBlockRecords = []int{4, 16, 64}[rng.IntN(3)]
		c.MaintenanceInterval = time.Hour
		c.MemTableBytes = 1 << 20
	}
	db := openTest(t, dir, mut)
	w := record.WindowOf(time.Now().UnixMilli() - 3*record.WindowMillis)
	parts := []record.Partition{3, 4, 150}
	slicesUsed := []uint8{1, 2, 30}
	n := 0
	mint := func(r *rand.Rand) Entry {
		n++
		s := slicesUsed[r.IntN(len(slicesUsed))]
		return entryAt(sliceStart(w, s)+r.Int64N(SliceMillis), parts[r.IntN(len(parts))], fmt.Sprintf("rec %d word%d", n, n%20))
	}
	var ops []revOp
	stored := map[record.ID]Entry{} // everything ever written
	var ids []record.ID
	do := func(op revOp) {
		var err error
		if op.write != nil {
			op.res, err = db.Write(context.Background(), op.write, op.origin)
			for _, e := range op.write {
				if _, ok := stored[e.ID]; !ok {
					ids = append(ids, e.ID)
				}
				stored[e.ID] = e
			}
		} else {
			op.res, err = db.Delete(context.Background(), op.del)
		}
		if err != nil {
			t.Errorf("op: %v", err)
		}
		ops = append(ops, op)
	}
	var first []Entry
	for range 3000 {
		first = append(first, mint(rng))
	}
	do(revOp{write: first, origin: OriginRemote})
	step := func(r *rand.Rand) {
		pick := func(k int) []Entry {
			var es []Entry
			seen := map[record.ID]bool{}
			for range k {
				e := stored[ids[r.IntN(len(ids))]]
				if !seen[e.ID] {
					seen[e.ID] = true
					es = append(es, e)
				}
			}
			return es
		}
		switch r.IntN(5) {
		case 0: // late records
			var es []Entry
			for range 1 + r.IntN(30) {
				es = append(es, mint(r))
			}
			do(revOp{write: es, origin: OriginRemote})
		case 1: // copies of stored (or deleted) records, mixed with late ones
			es := pick(1 + r.IntN(40))
			es = append(es, mint(r))
			do(revOp{write: es, origin: []Origin{OriginRemote, OriginLocalRetry}[r.IntN(2)]})
		case 2: // deletes
			do(revOp{del: sortedIDs(pick(1 + r.IntN(20)))})
		case 3: // delete, then the copy again
			es := pick(1 + r.IntN(5))
			do(revOp{del: sortedIDs(es)})
			do(revOp{write: es, origin: OriginRemote})
		case 4: // a stretch deleted
			es := pick(1)
			var del []record.ID
			for _, id := range ids {
				if id.Partition() == es[0].ID.Partition() && record.Compare(id, es[0].ID) >= 0 && len(del) < 100 {
					del = append(del, id)
				}
			}
			do(revOp{del: del})
		}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	wr := rand.New(rand.NewPCG(seed, 8))
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			step(wr)
			time.Sleep(time.Duration(wr.IntN(500)) * time.Microsecond)
		}
	}()
	for pass := range 16 {
		if err := db.sealWindow(w, 0, uint8(slicesPerWindow)); err != nil {
			t.Logf("pass %d: %v", pass, err)
		}
		if pass%3 == 2 {
			db.allowDiscard()
			if err := db.dropMoved(true); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	<-done
	if t.Failed() {
		t.FailNow()
	}
	st := db.Stats()
	t.Logf("%d ops, moved %x, unsealed %d, recopied %d, merged %d", len(ops), db.movedNow(w), st.BlocksUnsealed, st.MovedRunsRecopied, st.BlocksMerged)
	ref := openTest(t, t.TempDir())
	var all []Entry
	for i, op := range ops {
		var res WriteResult
		var err error
		if op.write != nil {
			res, err = ref.Write(context.Background(), op.write, op.origin)
			all = append(all, op.write...)
		} else {
			res, err = ref.Delete(context.Background(), op.del)
		}
		if err != nil {
			t.Fatal(err)
		}
		if res.Written != op.res.Written || res.Duplicates != op.res.Duplicates {
			t.Errorf("op %d (%d written, %d deleted, origin %d): sealed store %d written %d duplicates, reference %d, %d",
				i, len(op.write), len(op.del), op.origin, op.res.Written, op.res.Duplicates, res.Written, res.Duplicates)
		}
	}
	want := readEverything(t, ref, all, 9)
	compareReads(t, "beside the sealer", want, readEverything(t, db, all, 9))
	checkRunRules(t, db)
	digestsAgree(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir, mut)
	compareReads(t, "reopened", want, readEverything(t, db, all, 9))
	moveAll(t, db)
	compareReads(t, "sealed again", want, readEverything(t, db, all, 9))
	digestsAgree(t, db)
}

// A replicated record whose duplicate check meets a block that does not
// decode fails its request; a local write of other records committed in the
// same group (the same open transaction) must then not be lost while its
// writer is told it succeeded, nor wait for a later write to be answered.
func TestWritePathAFailedDuplicateCheckLosesNoOtherWrite(t *testing.T) {
	db := openTest(t, t.TempDir())
	es := oneRun(t, db, 100, 5)
	w, s := es[0].ID.Window(), sliceOf(es[0].ID.Millis())
	if _, err := db.sealRun(w, s, 5, 10, 0); err != nil {
		t.Fatal(err)
	}
	// damage the block of es[50]
	var bk []byte
	if err := db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: runPrefix(w, s, 5)})
		defer it.Close()
		for it.Seek(recordKey(es[50].ID)); it.Valid(); it.Next() {
			bk = it.Item().KeyCopy(nil)
			return nil
		}
		return nil
	}); err != nil || len(bk) != blockKeyLen {
		t.Fatalf("block of es[50]: %x, %v", bk, err)
	}
	updateInCommitter(t, db, func(txn *badger.Txn) error { return txn.Set(bk, []byte("not a block")) })

	// other records, in a slice without blocks, and a late record into
	// the damaged block, queued while the committer is busy: one group
	var local []Entry
	for i := range 10 {
		local = append(local, entryAt(time.Now().Add(-time.Minute).UnixMilli()+int64(i), 9, fmt.Sprint("local ", i)))
	}
	late := entryAt(es[50].ID.Millis()+1, 5, "late")
	let, queued := holdCommitter(t, db) // a failed test still lets the committer go before the store closes
	type result struct {
		res WriteResult
		err error
	}
	localDone, lateDone := make(chan result, 1), make(chan result, 1)
	go func() {
		res, err := db.Write(context.Background(), local, OriginLocal)
		localDone <- result{res, err}
	}()
	queued(1)
	go func() {
		res, err := db.Write(context.Background(), []Entry{late}, OriginRemote)
		lateDone <- result{res, err}
	}()
	queued(2)
	let()
	var lr result
	select {
	case lr = <-localDone:
	case <-time.After(3 * time.Second):
		t.Errorf("the local write is not answered 3 s after its group (a later write answers it)")
		other := entryAt(time.Now().Add(-time.Minute).UnixMilli()+500, 11, "other")
		if _, err := db.Write(context.Background(), []Entry{other}, OriginLocal); err != nil {
			t.Fatal(err)
		}
		lr = <-localDone
	}
	lt := <-lateDone
	t.Logf("late record: %+v, %v", lt.res, lt.err)
	t.Logf("local write: %+v, %v", lr.res, lr.err)
	stored := 0
	for _, e := range local {
		if _, err := db.Get(e.ID); err == nil {
			stored++
		}
	}
	if lr.err == nil && (stored != len(local) || lr.res.Written != len(local)) {
		t.Errorf("the local write succeeded (%+v) but %d of its %d records are stored", lr.res, stored, len(local))
	}
}
