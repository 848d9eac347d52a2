package index

// Tests written by review of 9f226b5 (moved slices). Each one demonstrates
// a defect; see the comment above each test.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	_ "slices"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/logmesh/logmesh/record"
)

// zzVersions counts every version (tombstones included) of the keys under
// prefix, at readAll.
func zzVersions(t *testing.T, db *DB, prefix []byte) int {
	t.Helper()
	txn := db.bdb.NewTransactionAt(readAll, false)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, AllVersions: true, PrefetchValues: false})
	defer it.Close()
	n := 0
	for it.Rewind(); it.Valid(); it.Next() {
		n++
	}
	return n
}

// zzCompactAway lets compactions discard what no snapshot reads
// (allowDiscard, as maintenance does) and forces the memtables down and the
// levels together (as Badger's own compactions do in time) until no version
// of any key under prefix is left, or fails t.
func zzCompactAway(t *testing.T, db *DB, prefix []byte) {
	t.Helper()
	db.allowDiscard()
	for i := 0; zzVersions(t, db, prefix) > 0; i++ {
		if i == 8 {
			t.Fatalf("compactions kept %d versions under %x", zzVersions(t, db, prefix), prefix)
		}
		// a DropPrefix of a key that exists flushes the memtables to level 0
		name := fmt.Sprintf("zz-flush-%d", i)
		if err := db.SetMeta(name, []byte("x")); err != nil {
			t.Fatal(err)
		}
		if err := db.inCommitter(func() error { return db.bdb.DropPrefix(metaKey(name)) }); err != nil {
			t.Fatal(err)
		}
		db.allowDiscard()
		if err := db.bdb.Flatten(1); err != nil {
			t.Fatal(err)
		}
	}
}

// zzCompactConfig: one level-0 table is enough for Flatten to move level 0
// down; maintenance only when the test says.
func zzCompactConfig(c *Config) {
	c.SealBlockRecords = 16
	c.L0Tables = 1
	c.MaintenanceInterval = time.Hour
}

// TestZZDeleteBeforeTheSwitchComesBackAfterACompaction: a record deleted
// after its run was copied into the moved space and before the switch is
// caught by switchSlice only while a version of its loose key above listTs
// is still in the store. Nothing holds the discard timestamp at or below
// listTs between the copy and the switch (moveSlices releases the listing
// snapshot at once, sealRuns each batch's after its blocks are written), so
// a maintenance and a compaction in between (the move of a big window takes
// minutes) drop the delete whole: the switch finds no change in the run,
// does not copy it again, and the deleted record is back, in the moved block.
func TestZZDeleteBeforeTheSwitchComesBackAfterACompaction(t *testing.T) {
	db := openTest(t, t.TempDir(), zzCompactConfig)
	rng := rand.New(rand.NewPCG(71, 72))
	es := sealEntries(t, db, rng)
	victim := es[len(es)/2].ID
	w := victim.Window()
	t.Cleanup(func() { moveBeforeSwitch = nil })
	done := false
	moveBeforeSwitch = func(mw record.Window) {
		if mw != w || done {
			return
		}
		done = true
		if res, err := db.Delete(context.Background(), []record.ID{victim}); err != nil || res.Written != 1 {
			t.Errorf("delete: %+v, %v", res, err)
			return
		}
		if _, err := db.Get(victim); !errors.Is(err, ErrNotFound) {
			t.Errorf("right after its delete, Get(victim) = %v, want ErrNotFound", err)
		}
		// maintenance and compactions while the move goes on
		zzCompactAway(t, db, recordKey(victim))
	}
	moveAll(t, db)
	moveBeforeSwitch = nil
	if t.Failed() {
		t.FailNow()
	}
	if !done || db.movedNow(w)&moved(sliceBit(sliceOf(victim.Millis()))) == 0 {
		t.Fatal("the victim's slice was not moved")
	}
	if data, err := db.Get(victim); err == nil {
		t.Fatalf("a record deleted (and acknowledged) before the switch is back after it: Get returns %d bytes", len(data))
	}
}

// zzRun mints n records of partition p in slice s of window w.
func zzRun(w record.Window, s uint8, p record.Partition, n int) []Entry {
	es := make([]Entry, 0, n)
	for i := range n {
		id := idIn(sliceStart(w, s)+int64(i)%SliceMillis, p)
		r := &record.Record{ID: id, Message: fmt.Sprintf("slice %d partition %d line %d", s, p, i)}
		es = append(es, Entry{ID: id, Data: r.AppendEncode(nil)})
	}
	return es
}

// zzActiveSnapshots counts the snapshots in use.
func zzActiveSnapshots(db *DB) int {
	db.snaps.mu.Lock()
	defer db.snaps.mu.Unlock()
	n := 0
	for _, c := range db.snaps.active {
		n += c
	}
	return n
}

// TestZZARunRetriedDuringAMoveIsLostAfterACompaction: a run that changed
// while its batch was encoded is left out of the move (applySeals retries
// it: not in copied), and switchSlice copies it at the switch only if it
// finds a version of its keys above listTs. When that change was a delete
// and a compaction dropped it before the switch (nothing holds the discard
// timestamp down), the switch finds no change, copies nothing, and switches
// the slice over with that run missing from the moved space: every record of
// the run is gone for readers, and maintenance then drops the loose copies.
func TestZZARunRetriedDuringAMoveIsLostAfterACompaction(t *testing.T) {
	db := openTest(t, t.TempDir(), zzCompactConfig)
	w := record.WindowOf(time.Now().UnixMilli() - 3*record.WindowMillis)
	// two batches: run A alone fills the first (sealBatchRecords), run B
	// is the second
	a := zzRun(w, 1, 3, sealBatchRecords-400)
	b := zzRun(w, 2, 77, 1000)
	for _, es := range [][]Entry{a, b} {
		if res, err := db.Write(context.Background(), es, OriginLocal); err != nil || res.Written != len(es) {
			t.Fatalf("write: %+v, %v", res, err)
		}
	}
	victim := b[500].ID
	deleted := make(chan struct{})
	t.Cleanup(func() { sealTxnFault, moveBeforeSwitch = nil, nil })
	once := false
	sealTxnFault = func() error {
		// batch A is being written, inside the committer; batch B was read
		// from a snapshot of its own: a delete in run B now lands after it
		if once {
			return nil
		}
		once = true
		for deadline := time.Now().Add(5 * time.Second); zzActiveSnapshots(db) < 2; {
			if time.Now().After(deadline) {
				t.Error("the next batch was not read beside this one")
				close(deleted)
				return nil
			}
			time.Sleep(time.Millisecond)
		}
		go func() {
			defer close(deleted)
			if res, err := db.Delete(context.Background(), []record.ID{victim}); err != nil || res.Written != 1 {
				t.Errorf("delete: %+v, %v", res, err)
			}
		}()
		return nil
	}
	moveBeforeSwitch = func(record.Window) {
		<-deleted
		if db.Stats().SealsRetried == 0 {
			t.Error("run B was not retried: the delete landed before its snapshot")
			return
		}
		zzCompactAway(t, db, recordKey(victim))
	}
	if err := db.sealWindow(w, 0, uint8(slicesPerWindow)); err != nil {
		t.Fatal(err)
	}
	sealTxnFault, moveBeforeSwitch = nil, nil
	if t.Failed() {
		t.FailNow()
	}
	if mv := db.movedNow(w); mv&moved(sliceBit(2)) == 0 {
		t.Fatalf("slice 2 not moved (moved %x)", mv)
	}
	n, err := db.Count(context.Background(), ScanOptions{FromMillis: sliceStart(w, 2), ToMillis: sliceStart(w, 3) - 1, Match: func(record.ID, []byte) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for _, e := range b {
		if _, err := db.Get(e.ID); err == nil {
			got++
		}
	}
	if n != uint64(len(b)-1) || got != len(b)-1 {
		t.Fatalf("after the switch, slice 2 holds %d records by a count, %d by Get; want %d (run B less one delete)", n, got, len(b)-1)
	}
}
