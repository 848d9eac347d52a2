package index

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/logmesh/logmesh/record"
)

// openCaptured opens a store whose sealer keeps the records of the slices
// that began after since in memory (capture.go) and which the test drives
// itself (sealWindow, cutCaptured): small blocks, so that a few hundred
// records per run make several.
func openCaptured(t *testing.T, dir string, since time.Time, mut ...func(*Config)) *DB {
	t.Helper()
	return openTest(t, dir, append([]func(*Config){func(c *Config) {
		c.SealAfter, c.noSealLoop, c.captureSince = time.Hour, true, since
		c.SealBlockRecords, c.SealMinRecords = 32, 4
	}}, mut...)...)
}

// cutRun returns a partition of a run the capture cut a block of, and the
// range of that block's records (the run's first block).
func cutRun(t *testing.T, db *DB, es []Entry) (record.Partition, record.ID, record.ID) {
	t.Helper()
	var found bool
	var p record.Partition
	var first, last record.ID
	err := db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixRecord}})
		defer it.Close()
		for it.Rewind(); it.Valid() && !found; it.Next() {
			k := it.Item().Key()
			if sliceOfKey(k)&movedSpace == 0 {
				continue
			}
			if f, l, ok := blockRange(k); ok {
				found, p, first, last = true, f.Partition(), f, l
			}
		}
		return nil
	})
	if err != nil || !found {
		t.Fatalf("no block cut from memory (%v)", err)
	}
	return p, first, last
}

// TestMovesFromMemoryReadExactly writes records into slices the capture
// holds, local and replicated, out of order, with blocks cut between the
// writes; then a record lands inside a block cut already, one is deleted
// and one is written straight into the store where the capture cannot see
// it. Each slice is moved: the runs the capture holds exactly come from
// memory, the three others are read back, and every reader reads what a
// store that never sealed reads, before and after the loose records are
// dropped, and after a reopen.
func TestMovesFromMemoryReadExactly(t *testing.T) {
	dir := t.TempDir()
	db := openCaptured(t, dir, time.Now().Add(-4*time.Hour))
	rng := rand.New(rand.NewPCG(41, 42))
	es := makeSealEntries(rng)
	slices.SortFunc(es, func(a, b Entry) int { return record.Compare(a.ID, b.ID) })
	ctx := context.Background()
	// in ID order but each pair of batches the later first, local and
	// replicated in turn; blocks cut after every pair
	var batches [][]Entry
	for i := 0; i < len(es); i += 97 {
		batches = append(batches, es[i:min(i+97, len(es))])
	}
	for i := 0; i < len(batches); i += 2 {
		for j := min(i+1, len(batches)-1); j >= i; j-- {
			origin := OriginLocal
			if j%2 == 1 {
				origin = OriginRemote
			}
			if _, err := db.Write(ctx, batches[j], origin); err != nil {
				t.Fatal(err)
			}
		}
		if i%4 == 0 {
			if err := db.cutCaptured(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := db.cutCaptured(); err != nil {
		t.Fatal(err)
	}
	if db.Stats().CapturedBlocks == 0 {
		t.Fatal("no block was cut from memory ahead of the moves")
	}

	// a record inside a block cut already (its run is read back)
	p, first, last := cutRun(t, db, es)
	var late record.ID
	for late = idIn(first.Millis(), p); record.Compare(late, first) <= 0 || record.Compare(late, last) >= 0 || slices.ContainsFunc(es, func(e Entry) bool { return e.ID == late }); late = idIn(first.Millis()+rng.Int64N(last.Millis()-first.Millis()+1), p) {
	}
	lateEntry := Entry{ID: late, Data: (&record.Record{ID: late, Message: "late, inside a block cut from memory"}).AppendEncode(nil)}
	if _, err := db.Write(ctx, []Entry{lateEntry}, OriginRemote); err != nil {
		t.Fatal(err)
	}
	es = append(es, lateEntry)
	// a record deleted (its run is read back)
	gone := es[len(es)/3]
	if res, err := db.Delete(ctx, []record.ID{gone.ID}); err != nil || res.Written != 1 {
		t.Fatalf("delete: %+v %v", res, err)
	}
	es = slices.DeleteFunc(es, func(e Entry) bool { return e.ID == gone.ID })
	// two mistakes of the capture itself: a record it lost, and one it
	// holds that the store does not
	lost, invented := mistakes(t, db, rng)

	want := readEverything(t, reference(t, es), es, 7)
	moveAll(t, db)
	st := db.Stats()
	if st.RunsFromMemory == 0 || st.RunsReadBack < 4 {
		t.Fatalf("moves took %d runs from memory and read %d back, want some and at least 4 (a late record, a delete, a record lost, one invented)", st.RunsFromMemory, st.RunsReadBack)
	}
	if st.CapturedBytes != 0 {
		t.Fatalf("%d bytes of records still held in memory after every slice moved", st.CapturedBytes)
	}
	checkRunRules(t, db)
	if _, err := db.Get(lost); err != nil {
		t.Fatalf("the record the capture lost: %v", err)
	}
	if _, err := db.Get(invented); err == nil {
		t.Fatal("the record the capture invented is stored")
	}
	compareReads(t, "moved from memory", want, readEverything(t, db, es, 7))
	db.allowDiscard()
	if err := db.dropMoved(true); err != nil {
		t.Fatal(err)
	}
	if db.Stats().SlicesDropped == 0 {
		t.Fatal("no moved slice dropped")
	}
	compareReads(t, "moved from memory, loose records dropped", want, readEverything(t, db, es, 7))
	db.Close()
	db = openCaptured(t, dir, time.Now())
	compareReads(t, "moved from memory, reopened", want, readEverything(t, db, es, 7))
}

// mistakes makes the capture of db wrong in two runs that hold pending
// records: it forgets one record of the first and holds one more in the
// second, whose ID the store does not have. It returns both IDs.
func mistakes(t *testing.T, db *DB, rng *rand.Rand) (lost, invented record.ID) {
	t.Helper()
	c := db.capture
	c.mu.Lock()
	defer c.mu.Unlock()
	var runs []*runCapture
	for _, ref := range slices.SortedFunc(maps.Keys(c.slices), func(a, b sliceRef) int { return int(a.w)*256 + int(a.s) - int(b.w)*256 - int(b.s) }) {
		sc := c.slices[ref]
		for _, p := range slices.Sorted(maps.Keys(sc.runs)) {
			if rc := sc.runs[p]; !rc.dirty && len(rc.pending) > 1 {
				runs = append(runs, rc)
			}
		}
	}
	if len(runs) < 2 {
		t.Fatalf("%d runs with pending records to make mistakes in", len(runs))
	}
	a, b := runs[0], runs[len(runs)-1]
	i := rng.IntN(len(a.pending))
	lost = a.pending[i].ID
	c.bytes -= int64(a.pending[i].n) + capturedOverhead
	a.pending = slices.Delete(a.pending, i, i+1)
	last := b.pending[len(b.pending)-1]
	invented = idIn(last.ID.Millis(), last.ID.Partition())
	b.pending = append(b.pending, capturedRecord{ts: last.ts, ID: invented, off: last.off, n: last.n})
	b.sorted = false
	c.bytes += int64(last.n) + capturedOverhead
	return lost, invented
}

// TestACopyThatFailsIsReadBackWhole: the blocks cut from memory fail to be
// written (Badger refuses the commit); the slice is then read back whole at
// its move, its copies cleared first, and reads exactly.
func TestACopyThatFailsIsReadBackWhole(t *testing.T) {
	db := openCaptured(t, t.TempDir(), time.Now().Add(-4*time.Hour))
	rng := rand.New(rand.NewPCG(43, 44))
	es := makeSealEntries(rng, 2)
	half := len(es) / 2
	if _, err := db.Write(context.Background(), es[:half], OriginLocal); err != nil {
		t.Fatal(err)
	}
	if err := db.cutCaptured(); err != nil { // copies that will be stale
		t.Fatal(err)
	}
	if db.Stats().CapturedBlocks == 0 {
		t.Fatal("nothing cut")
	}
	if _, err := db.Write(context.Background(), es[half:], OriginLocal); err != nil {
		t.Fatal(err)
	}
	restore := failCommits(t, db)
	err := db.cutCaptured()
	restore()
	if err == nil {
		t.Fatal("copying blocks while Badger refuses commits did not fail")
	}
	want := readEverything(t, reference(t, es), es, 3)
	moveAll(t, db)
	st := db.Stats()
	if st.RunsReadBack == 0 {
		t.Fatalf("no run read back after its copy failed (%d from memory)", st.RunsFromMemory)
	}
	checkRunRules(t, db)
	compareReads(t, "read back after a failed copy", want, readEverything(t, db, es, 3))
}

// TestCopiesLeftByAnEarlierProcessAreCleared: blocks cut from memory, then
// the process ends before the move. The next process does not hold those
// slices (they began before it); its move clears the copies and reads the
// slices back.
func TestCopiesLeftByAnEarlierProcessAreCleared(t *testing.T) {
	dir := t.TempDir()
	db := openCaptured(t, dir, time.Now().Add(-4*time.Hour))
	rng := rand.New(rand.NewPCG(45, 46))
	es := makeSealEntries(rng)
	if _, err := db.Write(context.Background(), es, OriginLocal); err != nil {
		t.Fatal(err)
	}
	if err := db.cutCaptured(); err != nil {
		t.Fatal(err)
	}
	if db.Stats().CapturedBlocks == 0 {
		t.Fatal("nothing cut")
	}
	// records of those runs deleted meanwhile, so the copies are wrong
	var ids []record.ID
	for i := 0; i < len(es); i += 5 {
		ids = append(ids, es[i].ID)
	}
	db.Close()
	db = openCaptured(t, dir, time.Now())
	if _, err := db.Delete(context.Background(), ids); err != nil {
		t.Fatal(err)
	}
	es = slices.DeleteFunc(es, func(e Entry) bool { return slices.Contains(ids, e.ID) })
	want := readEverything(t, reference(t, es), es, 4)
	moveAll(t, db)
	if st := db.Stats(); st.RunsFromMemory != 0 || st.RunsReadBack == 0 {
		t.Fatalf("after a restart, moves took %d runs from memory and read %d back", st.RunsFromMemory, st.RunsReadBack)
	}
	checkRunRules(t, db)
	compareReads(t, "copies of an earlier process", want, readEverything(t, db, es, 4))
}

// TestYoungRecordsWaitUnlessMemoryRunsOut: records younger than captureLag
// stay in memory (a late one would land inside their block), until what the
// capture holds passes its budget; then blocks are cut of those older than
// captureEagerLag, never of the newest (a batch in flight would land inside
// them, and the run would be read back at its move). Past twice the budget
// the slice holding most is given up (read back at its move).
func TestYoungRecordsWaitUnlessMemoryRunsOut(t *testing.T) {
	const newest = 50 // of the 200 records, younger than captureEagerLag on the store's clock, which stands still
	// in the middle of a minute slice: records on both sides of a slice's
	// start would make two slices, of which the capture over twice its
	// budget gives up one (found by review: 0.5% of runs failed)
	b := time.Now().Add(-time.Minute).UnixMilli()
	frozen := time.UnixMilli(b - b%SliceMillis + SliceMillis/2)
	young := func() []Entry {
		now := frozen.UnixMilli()
		var es []Entry
		for i := range 200 {
			ms := now - captureEagerLag.Milliseconds() - 10 - int64(i%50)
			if i >= 200-newest {
				ms = now - int64(i%50)
			}
			id := idIn(ms, 9)
			es = append(es, Entry{ID: id, Data: (&record.Record{ID: id, Message: fmt.Sprint("young ", i)}).AppendEncode(nil)})
		}
		return es
	}
	var held int64 // what the 200 records take in the capture
	for _, c := range []struct {
		name   string
		budget func() int64
	}{
		{"within its budget", func() int64 { return 64 << 20 }},
		{"over its budget", func() int64 { return held * 3 / 4 }},
		{"over twice its budget", func() int64 { return held / 3 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			budget := c.budget()
			db := openCaptured(t, t.TempDir(), frozen.Add(-time.Hour), func(c *Config) {
				c.SealCaptureBytes = budget
				c.Now = func() time.Time { return frozen }
			})
			if _, err := db.Write(context.Background(), young(), OriginLocal); err != nil {
				t.Fatal(err)
			}
			st := db.Stats()
			if held == 0 {
				held = st.CapturedBytes
			}
			if budget < held/2 {
				if st.CaptureShed == 0 || st.CapturedBytes != 0 {
					t.Fatalf("holding %d bytes, over twice its budget of %d, the capture gave up %d slices", st.CapturedBytes, budget, st.CaptureShed)
				}
				return
			}
			if st.CapturedBytes == 0 || st.CaptureShed != 0 {
				t.Fatalf("the capture holds %d bytes of records written into a slice it captures (%d slices given up)", st.CapturedBytes, st.CaptureShed)
			}
			if err := db.cutCaptured(); err != nil {
				t.Fatal(err)
			}
			after := db.Stats()
			if budget > held && (after.CapturedBlocks != 0 || after.CapturedBytes != st.CapturedBytes) {
				t.Fatalf("records younger than %v cut into %d blocks (%d of %d bytes left)", captureLag, after.CapturedBlocks, after.CapturedBytes, st.CapturedBytes)
			}
			if budget < held && (after.CapturedBlocks == 0 || after.CapturedBytes > budget) {
				t.Fatalf("over its budget of %d, the capture cut %d blocks (%d of %d bytes left)", budget, after.CapturedBlocks, after.CapturedBytes, st.CapturedBytes)
			}
			if budget < held && after.CapturedBytes < held*newest/200*9/10 {
				t.Fatalf("over its budget, the capture cut the newest records too: %d of %d bytes left, the newest %d records take about %d",
					after.CapturedBytes, st.CapturedBytes, newest, held*newest/200)
			}
		})
	}
}

// TestOnlySlicesBegunSinceTheOpeningAreCaptured: a slice that began before
// the store opened may hold records of an earlier process, and a slice
// whose loose space held a key when its first captured record came is read
// back whole. By default the slice the store opens in is captured too (if
// it is still empty at its first write), not those before it.
func TestOnlySlicesBegunSinceTheOpeningAreCaptured(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(47, 48))
	es := makeSealEntries(rng, 2)
	db := openTest(t, dir)
	if _, err := db.Write(context.Background(), es[:10], OriginLocal); err != nil {
		t.Fatal(err)
	}
	db.Close()
	// captured from before those records' slices began: the slice the
	// earlier records are in is found not empty when its capture begins
	db = openCaptured(t, dir, time.Now().Add(-4*time.Hour))
	if _, err := db.Write(context.Background(), es[10:], OriginLocal); err != nil {
		t.Fatal(err)
	}
	first := sliceRef{es[0].ID.Window(), sliceOf(es[0].ID.Millis())}
	if db.capture.valid(first) {
		t.Fatal("a slice that held records when its capture began is captured")
	}
	want := readEverything(t, reference(t, es), es, 5)
	moveAll(t, db)
	checkRunRules(t, db)
	compareReads(t, "a slice begun before", want, readEverything(t, db, es, 5))
	if !db.capture.wants(idIn(time.Now().UnixMilli(), 1)) || db.capture.wants(idIn(time.Now().Add(-5*time.Hour).UnixMilli(), 1)) {
		t.Fatal("the capture wants records by the wrong bound")
	}
	before := time.Now().UnixMilli()
	fresh := openCaptured(t, t.TempDir(), time.Time{})
	now := time.Now().UnixMilli()
	minute := now - now%SliceMillis
	if before >= minute && (!fresh.capture.wants(idIn(minute, 1)) || fresh.capture.wants(idIn(minute-1, 1))) {
		t.Fatal("by default the capture does not begin with the slice the store opened in")
	} // (else the opening straddled a minute)
}

// TestARunDeletedWholeAfterItsCutStaysDeleted: a run whose blocks were cut
// from memory is then deleted whole; the move finds the run gone from the
// store, clears the slice's copies and reads the slice back, so the
// deleted records do not come back from their copies.
func TestARunDeletedWholeAfterItsCutStaysDeleted(t *testing.T) {
	db := openCaptured(t, t.TempDir(), time.Now().Add(-4*time.Hour))
	rng := rand.New(rand.NewPCG(49, 50))
	es := makeSealEntries(rng, 2)
	if _, err := db.Write(context.Background(), es, OriginLocal); err != nil {
		t.Fatal(err)
	}
	if err := db.cutCaptured(); err != nil {
		t.Fatal(err)
	}
	p, first, _ := cutRun(t, db, es)
	var ids []record.ID
	for _, e := range es {
		if e.ID.Partition() == p && e.ID.Window() == first.Window() && sliceOf(e.ID.Millis()) == sliceOf(first.Millis()) {
			ids = append(ids, e.ID)
		}
	}
	if res, err := db.Delete(context.Background(), ids); err != nil || res.Written != len(ids) {
		t.Fatalf("delete the run: %+v %v", res, err)
	}
	es = slices.DeleteFunc(es, func(e Entry) bool { return slices.Contains(ids, e.ID) })
	want := readEverything(t, reference(t, es), es, 6)
	moveAll(t, db)
	checkRunRules(t, db)
	compareReads(t, "a run deleted after its cut", want, readEverything(t, db, es, 6))
	for _, id := range ids {
		if _, err := db.Get(id); err == nil {
			t.Fatalf("%s, deleted, is back after the move", id)
		}
	}
}

// TestACopyWaitsOutWritesBlockedByADrop: Badger refuses every write while a
// prefix is dropped (a switch's drop has taken seven seconds in a sustained
// run). A copy of cut blocks waits for writes to come back instead of
// giving up after two seconds, which broke every slice it had cut from:
// each was read back whole at its move.
func TestACopyWaitsOutWritesBlockedByADrop(t *testing.T) {
	db := openCaptured(t, t.TempDir(), time.Now().Add(-time.Hour))
	ms := time.Now().Add(-10 * time.Minute).UnixMilli()
	w, s := record.WindowOf(ms), sliceOf(ms)
	if _, err := db.Write(context.Background(), slicePartitionRun(w, s, 9, 40, 0, "cut"), OriginLocal); err != nil {
		t.Fatal(err)
	}
	unblock := failCommits(t, db)
	const blocked = 3 * time.Second // longer than the copy waited before
	start := time.Now()
	timer := time.AfterFunc(blocked, unblock)
	defer timer.Stop()
	if err := db.cutCaptured(); err != nil {
		t.Fatalf("the copy gave up after %v of blocked writes: %v", time.Since(start).Round(time.Millisecond), err)
	}
	if took := time.Since(start); took < blocked {
		t.Fatalf("the copy returned after %v, while writes were blocked for %v", took, blocked)
	}
	db.capture.mu.Lock()
	sc := db.capture.slices[sliceRef{w, s}]
	broken := sc == nil || sc.broken
	db.capture.mu.Unlock()
	if broken || db.Stats().CapturedBlocks == 0 {
		t.Fatalf("after the writes came back: slice broken %v, %d blocks copied", broken, db.Stats().CapturedBlocks)
	}
}

// TestCutsGoOnWhileAMoveListsItsSlice: a move lists its slice (seconds for a
// minute of records at 100 000 lines/s) with that slice held off the cuts,
// but not the others: the cutter goes on cutting the slice being written
// meanwhile. Held off them all, it let that slice's capture pass twice its
// budget and give it up (read back whole at its own move) in every
// sustained run. The slice moved is still taken from memory, exactly.
func TestCutsGoOnWhileAMoveListsItsSlice(t *testing.T) {
	db := openCaptured(t, t.TempDir(), time.Now().Add(-time.Hour))
	msA, msB := time.Now().Add(-10*time.Minute).UnixMilli(), time.Now().Add(-5*time.Minute).UnixMilli()
	a, b := sliceRef{record.WindowOf(msA), sliceOf(msA)}, sliceRef{record.WindowOf(msB), sliceOf(msB)}
	es := append(slicePartitionRun(a.w, a.s, 9, 40, 0, "moved"), slicePartitionRun(b.w, b.s, 9, 40, 0, "written meanwhile")...)
	if _, err := db.Write(context.Background(), es, OriginLocal); err != nil {
		t.Fatal(err)
	}
	want := readEverything(t, reference(t, es), es, 3)
	cutOf := func(ref sliceRef) int {
		db.capture.mu.Lock()
		defer db.capture.mu.Unlock()
		if sc := db.capture.slices[ref]; sc != nil && sc.runs[9] != nil {
			return sc.runs[9].cut
		}
		return -1
	}
	listed := false
	t.Cleanup(func() { moveListing = nil })
	moveListing = func(w record.Window, s uint8) {
		if (sliceRef{w, s}) != a {
			return
		}
		listed = true
		done := make(chan error, 1)
		go func() { done <- db.cutCaptured() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("a cut beside the listing: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("the cutter waited for the move's listing of another slice")
			return // (it goes on once the move lets it)
		}
		if got := cutOf(b); got != 32 {
			t.Errorf("the slice being written had %d records cut beside the listing of another, want a block of 32", got)
		}
		if got := cutOf(a); got != 0 {
			t.Errorf("the slice being listed had %d records cut during its listing", got)
		}
	}
	if err := db.sealWindow(a.w, a.s, a.s+1); err != nil {
		t.Fatal(err)
	}
	if !listed {
		t.Fatal("the move never listed its slice")
	}
	if st := db.Stats(); st.RunsFromMemory != 1 || st.RunsReadBack != 0 {
		t.Fatalf("the slice moved: %d runs from memory, %d read back; want its one run from memory", st.RunsFromMemory, st.RunsReadBack)
	}
	moveAll(t, db)
	compareReads(t, "cuts beside a listing", want, readEverything(t, db, es, 3))
}
