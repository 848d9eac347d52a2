package index

// Tests of what a switch carries over (switch.go), from a review of the
// delta switch: each breaks when the switch writes a change wrong.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/logmesh/logmesh/record"
)

// entryAt makes a record of partition p at ms.
func entryAt(ms int64, p record.Partition, msg string) Entry {
	id := idIn(ms, p)
	r := &record.Record{ID: id, Message: msg, Raw: []byte("<13>" + msg)}
	return Entry{ID: id, Data: r.AppendEncode(nil)}
}

// writeSpaced writes n records of partition p into slice s of window w,
// step milliseconds apart from the slice's start, and returns them.
func writeSpaced(t *testing.T, db *DB, w record.Window, s uint8, p record.Partition, n, step int) []Entry {
	t.Helper()
	es := make([]Entry, 0, n)
	for i := range n {
		es = append(es, entryAt(sliceStart(w, s)+int64(step*i), p, fmt.Sprintf("orig %d word%d", i, i%20)))
	}
	for i := 0; i < len(es); i += 500 {
		part := es[i:min(i+500, len(es))]
		if res, err := db.Write(context.Background(), part, OriginLocal); err != nil || res.Written != len(part) {
			t.Fatalf("write: %+v, %v", res, err)
		}
	}
	return es
}

// writeLateAndDelete writes late and deletes del, from a hook (reporting
// with Errorf).
func writeLateAndDelete(t *testing.T, db *DB, late []Entry, del []record.ID) {
	t.Helper()
	if res, err := db.Write(context.Background(), late, OriginRemote); err != nil || res.Written != len(late) {
		t.Errorf("late write: %+v, %v", res, err)
	}
	if res, err := db.Delete(context.Background(), del); err != nil || res.Written != len(del) {
		t.Errorf("delete: %+v, %v", res, err)
	}
}

// deltaScenario: a run sealed in place into blocks of inPlace records in the
// loose space, moved with blocks of per records, and changed between its
// copy and its switch in every way the delta carries.
func deltaScenario(t *testing.T, inPlace, per int, valueThreshold int64) {
	dir := t.TempDir()
	db := openTest(t, dir, func(c *Config) {
		c.SealBlockRecords = per
		c.MaintenanceInterval = time.Hour
		if valueThreshold > 0 {
			c.ValueThreshold = valueThreshold
		}
	})
	w := record.WindowOf(time.Now().UnixMilli() - 3*record.WindowMillis)
	const s = 4
	parts := []record.Partition{3, 77}
	var all []Entry
	for _, p := range parts {
		es := writeSpaced(t, db, w, s, p, 200, 10)
		all = append(all, es...)
	}
	// partition 3's run sealed in place first (its first 120 records)
	if inPlace > 0 {
		if _, err := db.sealRun(w, s, 3, inPlace, 120); err != nil {
			t.Fatal(err)
		}
	}
	var deleted []record.ID
	t.Cleanup(func() { moveBeforeSwitch = nil })
	moveBeforeSwitch = func(mw record.Window, ms uint8) {
		if mw != w || ms != s {
			return
		}
		moveBeforeSwitch = nil
		var late []Entry
		var del []record.ID
		for _, p := range parts {
			base := sliceStart(w, s)
			// late records inside the ranges (of loose blocks too)
			for _, i := range []int{3, 17, 45, 46, 99, 150, 199} {
				late = append(late, entryAt(base+int64(10*i+5), p, fmt.Sprintf("late %d word7", i)))
			}
			// a late record past the end
			late = append(late, entryAt(base+int64(10*250), p, "late end word7"))
			// deletes inside (blocks in both spaces), at the edges
			for _, i := range []int{0, 8, 9, 60, 61, 62, 119, 120, 180, 199} {
				var id record.ID
				for _, e := range all {
					if e.ID.Partition() == p && e.ID.Millis() == base+int64(10*i) {
						id = e.ID
					}
				}
				del = append(del, id)
			}
		}
		writeLateAndDelete(t, db, late, del)
		all = append(all, late...)
		deleted = append(deleted, del...)
		// some deleted records written again, some late ones deleted
		var again []Entry
		for _, e := range all {
			if slices.Contains(del[:3], e.ID) || slices.Contains(del[10:13], e.ID) {
				again = append(again, e)
			}
		}
		if res, err := db.Write(context.Background(), again, OriginRemote); err != nil || res.Written != len(again) {
			t.Errorf("write again: %+v, %v", res, err)
		}
		deleted = slices.DeleteFunc(deleted, func(id record.ID) bool {
			return slices.ContainsFunc(again, func(e Entry) bool { return e.ID == id })
		})
		del2 := []record.ID{late[1].ID, late[9].ID, late[7].ID}
		if res, err := db.Delete(context.Background(), del2); err != nil || res.Written != len(del2) {
			t.Errorf("delete late: %+v, %v", res, err)
		}
		deleted = append(deleted, del2...)
	}
	if err := db.sealWindow(w, s, s+1); err != nil {
		t.Fatal(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	if db.movedNow(w)&moved(sliceBit(s)) == 0 {
		t.Fatal("not moved")
	}
	kept := keptOf(all, deleted)
	want := readEverything(t, reference(t, kept), all, 3)
	compareReads(t, "switched", want, readEverything(t, db, all, 3))
	checkRunRules(t, db)
	st := db.Stats()
	t.Logf("stats: sealed %d blocks %d unsealed %d recopied %d", st.RecordsSealed, st.BlocksWritten, st.BlocksUnsealed, st.MovedRunsRecopied)
	// what readers read from blocks, against RecordsSealed
	db.allowDiscard()
	if err := db.dropMoved(true); err != nil {
		t.Fatal(err)
	}
	compareReads(t, "dropped", want, readEverything(t, db, all, 3))
	sr, err := db.Scrub(context.Background(), 0)
	if err != nil || sr.Records != uint64(len(kept)) || sr.Buckets != 0 {
		t.Fatalf("scrub: %+v, %v; want %d records", sr, err, len(kept))
	}
	moveAll(t, db)
	compareReads(t, "sealed again", want, readEverything(t, db, all, 3))
	checkRunRules(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir)
	compareReads(t, "reopened", want, readEverything(t, db, all, 3))
}

func TestASwitchCarriesEveryKindOfChange(t *testing.T) {
	ran := 0
	for _, c := range []struct{ inPlace, per int }{{7, 16}, {16, 7}, {0, 16}, {7, 7}, {5, 64}} {
		for _, vt := range []int64{0, 64} {
			if ran++; (raceDetector || testing.Short()) && ran > 1 {
				return // one variant: the rest take a minute under -race (make test runs them without)
			}
			t.Run(fmt.Sprintf("inplace=%d per=%d vt=%d", c.inPlace, c.per, vt), func(t *testing.T) {
				deltaScenario(t, c.inPlace, c.per, vt)
			})
		}
	}
}

// keysIn counts the loose record keys under prefix.
func keysIn(t testing.TB, db *DB, prefix []byte) (loose, blocks int) {
	t.Helper()
	txn, release := db.snapshot()
	defer release()
	it := txn.NewIterator(keysOnly(prefix))
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		switch len(it.Item().Key()) {
		case recordKeyLen:
			loose++
		case blockKeyLen:
			blocks++
		}
	}
	return loose, blocks
}

// TestTheNextPassSealsWhatASwitchLeftLoose: the switch writes late records
// past every block's range loose, "for the next pass".
func TestTheNextPassSealsWhatASwitchLeftLoose(t *testing.T) {
	db := openTest(t, t.TempDir(), func(c *Config) {
		c.SealBlockRecords = 16
		c.SealAfter, c.SealInterval = time.Millisecond, time.Hour
		c.MaintenanceInterval = time.Hour
	})
	w := record.WindowOf(time.Now().UnixMilli() - 3*record.WindowMillis)
	const s = 4
	writeSpaced(t, db, w, s, 3, 200, 10)
	t.Cleanup(func() { moveBeforeSwitch = nil })
	moveBeforeSwitch = func(record.Window, uint8) {
		moveBeforeSwitch = nil
		late := []Entry{entryAt(sliceStart(w, s)+2_500, 3, "late")} // the run ends at +1 990
		if res, err := db.Write(context.Background(), late, OriginRemote); err != nil || res.Written != 1 {
			t.Errorf("late: %+v %v", res, err)
		}
	}
	for i := range 3 {
		if err := db.sealPass(); err != nil {
			t.Fatal(err)
		}
		l, b := keysIn(t, db, slicePrefix(w, s|movedSpace))
		t.Logf("after pass %d: moved %x, %d loose and %d blocks in the moved space", i+1, db.movedNow(w), l, b)
		if i == 0 && (l != 1 || db.movedNow(w)&moved(sliceBit(s)) == 0) {
			t.Fatalf("the first pass left %d loose records in the moved space; want the slice moved and the late record loose", l)
		}
	}
	if l, _ := keysIn(t, db, slicePrefix(w, s|movedSpace)); l != 0 {
		t.Fatalf("%d loose records left in the moved space after three passes", l)
	}
}

// TestASwitchMergesLateRecordsIntoTheirBlocks: late records and deletes
// inside moved blocks' ranges are merged into those blocks at the switch,
// which leaves nothing loose; blocks encoded before the switch are reused
// by it unless their changes changed meanwhile, and then encoded again.
func TestASwitchMergesLateRecordsIntoTheirBlocks(t *testing.T) {
	for _, meanwhile := range []bool{false, true} {
		t.Run(fmt.Sprint("changed after the plan=", meanwhile), func(t *testing.T) {
			db := openTest(t, t.TempDir(), func(c *Config) { c.SealBlockRecords = 16; c.MaintenanceInterval = time.Hour })
			w := record.WindowOf(time.Now().UnixMilli() - 3*record.WindowMillis)
			const s = 4
			all := writeSpaced(t, db, w, s, 3, 200, 10)
			all = append(all, writeSpaced(t, db, w, s, 8, 200, 10)...)
			var deleted []record.ID
			t.Cleanup(func() { moveBeforeSwitch, switchPlanned = nil, nil })
			moveBeforeSwitch = func(record.Window, uint8) {
				moveBeforeSwitch = nil
				late := []Entry{entryAt(sliceStart(w, s)+55, 3, "late one"), entryAt(sliceStart(w, s)+1005, 8, "late two"),
					entryAt(sliceStart(w, s)+1007, 8, "late three")}
				del := []record.ID{all[0].ID, all[17].ID, all[399].ID} // the first of a block, one inside, the last of the run
				writeLateAndDelete(t, db, late, del)
				all = append(all, late...)
				deleted = append(deleted, del...)
			}
			switchPlanned = func(record.Window, uint8) {
				switchPlanned = nil
				if !meanwhile {
					return
				}
				late := []Entry{entryAt(sliceStart(w, s)+57, 3, "late four")} // into a block merged already
				del := []record.ID{all[250].ID}                               // from one that was not
				writeLateAndDelete(t, db, late, del)
				all = append(all, late...)
				deleted = append(deleted, del...)
			}
			if err := db.sealWindow(w, s, s+1); err != nil {
				t.Fatal(err)
			}
			if t.Failed() {
				t.FailNow()
			}
			if db.movedNow(w)&moved(sliceBit(s)) == 0 {
				t.Fatal("not moved")
			}
			st := db.Stats()
			inCommitter := db.stats.mergedInCommitter.Load()
			l, b := keysIn(t, db, slicePrefix(w, s|movedSpace))
			t.Logf("merged %d (%d in the committer), unsealed %d; moved space: %d loose, %d blocks", st.BlocksMerged, inCommitter, st.BlocksUnsealed, l, b)
			// blocks of 16 records, 10 ms apart: partition 3's first two,
			// partition 8's seventh and last (and its fourth)
			wantMerged, wantInCommitter := uint64(4), uint64(0)
			if meanwhile {
				wantMerged, wantInCommitter = 5, 2
			}
			if st.BlocksMerged != wantMerged || inCommitter != wantInCommitter || st.BlocksUnsealed != 0 || l != 0 {
				t.Errorf("merged %d blocks, %d of them in the committer, unsealed %d, %d loose records left; want %d, %d, 0, 0",
					st.BlocksMerged, inCommitter, st.BlocksUnsealed, l, wantMerged, wantInCommitter)
			}
			kept := keptOf(all, deleted)
			if n := recordsInBlocks(t, db, slicePrefix(w, s|movedSpace)); n != len(kept) {
				t.Errorf("the moved blocks hold %d records; want %d", n, len(kept))
			}
			want := readEverything(t, reference(t, kept), all, 3)
			compareReads(t, "switched", want, readEverything(t, db, all, 3))
			checkRunRules(t, db)
		})
	}
}

// TestMergedBlocksKeepTheSealersBounds: late records that would grow a
// moved block past what the sealer puts in one (SealBlockRecords, and its
// records, loose, in a quarter of a transaction: an unseal writes them all
// back at once) make it more than one block (found by review: a block of 16
// grew to 416 records, and no later pass cut it).
func TestMergedBlocksKeepTheSealersBounds(t *testing.T) {
	for _, c := range []struct {
		name       string
		late, size int
		minBlocks  int
	}{{"500 records of 150 bytes", 500, 150, 9}, {"200 records of 2 KB", 200, 2000, 12}} {
		t.Run(c.name, func(t *testing.T) {
			db := openTest(t, t.TempDir(), smallTransactions)
			w := record.WindowOf(time.Now().UnixMilli() - 3*record.WindowMillis)
			const s = 4
			all := writeSpaced(t, db, w, s, 3, 128, 40)
			t.Cleanup(func() { moveBeforeSwitch = nil })
			moveBeforeSwitch = func(record.Window, uint8) {
				moveBeforeSwitch = nil
				var late []Entry
				for i := range c.late { // inside the first block's range (0 .. 2 520 ms)
					late = append(late, entryAt(sliceStart(w, s)+int64(5*i+1), 3, fmt.Sprintf("late %d %s", i, strings.Repeat("x", c.size))))
				}
				writeLateAndDelete(t, db, late, nil)
				all = append(all, late...)
			}
			if err := db.sealWindow(w, s, s+1); err != nil {
				t.Fatal(err)
			}
			if t.Failed() {
				t.FailNow()
			}
			st := db.Stats()
			l, b := keysIn(t, db, slicePrefix(w, s|movedSpace))
			t.Logf("moved %x, merged %d; moved space: %d loose, %d blocks", db.movedNow(w), st.BlocksMerged, l, b)
			if db.movedNow(w)&moved(sliceBit(s)) == 0 || st.BlocksMerged != 1 || l != 0 || b < c.minBlocks+1 {
				t.Fatalf("want the slice moved, its first block merged with the late records into at least %d blocks, nothing loose", c.minBlocks)
			}
			if m := largestBlock(t, db, slicePrefix(w, s|movedSpace)); m > 64 {
				t.Errorf("a moved block holds %d records, more than SealBlockRecords", m)
			}
			checkBlockBound(t, db)
			checkRunRules(t, db)
			want := readEverything(t, reference(t, all), all, 3)
			compareReads(t, "switched", want, readEverything(t, db, all, 3))
		})
	}
}

// blockFits reports whether recs fit one block: as loose records, in one
// transaction beside a few others, since an unseal writes all of them back
// at once (planRun's bound).
func (db *DB) blockFits(recs []blockRecord) bool {
	if len(recs) > min(maxBlockRecords, int(db.bdb.MaxBatchCount()/4)) {
		return false
	}
	var size int64
	for _, r := range recs {
		size += int64(recordKeyLen+len(r.Data)) + 12 // entrySize
	}
	return size <= db.bdb.MaxBatchSize()/4
}

// checkBlockBound fails t if a block's records, as loose entries, take more
// than a quarter of a transaction (planRun's bound).
func checkBlockBound(t *testing.T, db *DB) {
	t.Helper()
	txn, release := db.snapshot()
	defer release()
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixRecord}})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		k := it.Item().Key()
		if len(k) != blockKeyLen {
			continue
		}
		if err := it.Item().Value(func(v []byte) error {
			b, err := decodeBlock(v)
			if err != nil {
				return err
			}
			recs := make([]blockRecord, len(b.IDs))
			for i := range b.IDs {
				recs[i] = blockRecord{ID: b.IDs[i], Data: b.Data[i]}
			}
			if !db.blockFits(recs) {
				return fmt.Errorf("block %x holds %d records, more than a block may", k, len(recs))
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
}

func keysOnly(prefix []byte) badger.IteratorOptions {
	return badger.IteratorOptions{Prefix: prefix, PrefetchValues: false}
}

// recordsInBlocks counts the records the blocks under prefix hold.
func recordsInBlocks(t *testing.T, db *DB, prefix []byte) int {
	t.Helper()
	n := 0
	txn, release := db.snapshot()
	defer release()
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		if len(it.Item().Key()) != blockKeyLen {
			continue
		}
		if err := it.Item().Value(func(v []byte) error {
			b, err := decodeBlock(v)
			n += len(b.IDs)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// TestRecordsSealedCountsEachRecordOncePerSealing: RecordsSealed counts a
// record each time it goes from loose into a block. A move counts, at its
// switch, the loose records it put into blocks and the late records its
// delta merged into them; records of blocks sealed in place before were
// counted then, and a move copying their blocks does not count them again
// (it did, found by review).
func TestRecordsSealedCountsEachRecordOncePerSealing(t *testing.T) {
	for _, inPlace := range []int{0, 7} {
		t.Run(fmt.Sprint("inplace=", inPlace), func(t *testing.T) {
			db := openTest(t, t.TempDir(), func(c *Config) { c.SealBlockRecords = 16; c.MaintenanceInterval = time.Hour })
			w := record.WindowOf(time.Now().UnixMilli() - 3*record.WindowMillis)
			const s = 4
			es := writeSpaced(t, db, w, s, 3, 200, 10)
			if inPlace > 0 {
				if _, err := db.sealRun(w, s, 3, inPlace, 0); err != nil {
					t.Fatal(err)
				}
			}
			before := db.Stats().RecordsSealed
			t.Cleanup(func() { moveBeforeSwitch = nil })
			moveBeforeSwitch = func(record.Window, uint8) {
				moveBeforeSwitch = nil
				late := []Entry{entryAt(sliceStart(w, s)+55, 3, "late"), entryAt(sliceStart(w, s)+1005, 3, "late")}
				if res, err := db.Write(context.Background(), late, OriginRemote); err != nil || res.Written != 2 {
					t.Errorf("late: %+v %v", res, err)
				}
				if res, err := db.Delete(context.Background(), []record.ID{es[150].ID}); err != nil || res.Written != 1 {
					t.Errorf("delete: %+v %v", res, err)
				}
			}
			if err := db.sealWindow(w, s, s+1); err != nil {
				t.Fatal(err)
			}
			st := db.Stats()
			inBlocks := recordsInBlocks(t, db, slicePrefix(w, s|movedSpace))
			t.Logf("in-place sealed %d; the switch counted %d sealed, blocks hold %d; blocks unsealed %d", before, st.RecordsSealed-before, inBlocks, st.BlocksUnsealed)
			switch {
			case inPlace == 0 && st.RecordsSealed != uint64(inBlocks+1):
				t.Errorf("RecordsSealed %d, the slice's blocks hold %d records, all loose before the move, and one was deleted from them",
					st.RecordsSealed, inBlocks)
			case inPlace > 0 && (before != uint64(len(es)) || st.RecordsSealed != before+2):
				t.Errorf("RecordsSealed %d after sealing %d records in place (%d counted), then moving them beside 2 late records: want %d",
					st.RecordsSealed, len(es), before, before+2)
			}
		})
	}
}

// smallTransactions configures a store whose transactions are small (a
// 1 MB memtable), with blocks of 64 records and maintenance left to the
// test.
func smallTransactions(c *Config) {
	c.SealBlockRecords = 64
	c.MaintenanceInterval = time.Hour
	c.MemTableBytes = 1 << 20
}

// deltaFaultStore: two runs of 1 500 records of slice 5, and between the copy
// and the switch 1 500 late records and 60 deletes spread over them (merged
// into their blocks) and 1 500 late records after them (loose), enough for
// the switch to write its delta in several transactions.
func deltaFaultStore(t *testing.T, dir string) (db *DB, w record.Window, all *[]Entry, deleted *[]record.ID) {
	db = openTest(t, dir, smallTransactions)
	w = record.WindowOf(time.Now().UnixMilli() - 3*record.WindowMillis)
	const s = 5
	all, deleted = new([]Entry), new([]record.ID)
	for _, p := range []record.Partition{1, 2} {
		es := writeSpaced(t, db, w, s, p, 1500, 20)
		*all = append(*all, es...)
	}
	// other slices of the window, moved before: readers of the window then
	// read it slice by slice
	for _, os := range []uint8{3, 9} {
		var es []Entry
		for i := range 100 {
			es = append(es, entryAt(sliceStart(w, os)+int64(20*i), 1, fmt.Sprintf("other %d word%d", i, i%20)))
			es = append(es, entryAt(sliceStart(w, os)+int64(20*i), 2, fmt.Sprintf("other %d word%d", i, i%20)))
		}
		if res, err := db.Write(context.Background(), es, OriginLocal); err != nil || res.Written != len(es) {
			t.Fatalf("write: %+v, %v", res, err)
		}
		*all = append(*all, es...)
		if otherSlicesMoved {
			if err := db.sealWindow(w, os, os+1); err != nil {
				t.Fatal(err)
			}
		}
	}
	moveBeforeSwitch = func(mw record.Window, ms uint8) {
		moveBeforeSwitch = nil
		var late []Entry
		var del []record.ID
		for _, p := range []record.Partition{1, 2} {
			for i := range 750 {
				late = append(late, entryAt(sliceStart(w, s)+int64(20*i*2+7), p, fmt.Sprintf("late %d word7", i)))
				late = append(late, entryAt(sliceStart(w, s)+30_000+int64(20*i+7), p, fmt.Sprintf("later %d word8", i)))
			}
		}
		for i := 0; i < 3000; i += 50 {
			del = append(del, (*all)[i].ID)
		}
		writeLateAndDelete(t, db, late, del)
		*all = append(*all, late...)
		*deleted = append(*deleted, del...)
	}
	t.Cleanup(func() { moveBeforeSwitch, sealTxnFault = nil, nil })
	return db, w, all, deleted
}

// TestAFaultInAnyTransactionOfASwitchLeavesNothingWrong: the k-th transaction of
// a switch fails (a delta transaction, or the marker's).
func TestAFaultInAnyTransactionOfASwitchLeavesNothingWrong(t *testing.T) {
	if raceDetector || testing.Short() {
		t.Skip("a minute under the race detector; make test runs this test without -race")
	}
	for k := 1; k <= 12; k++ {
		hit := false
		ok := t.Run(fmt.Sprintf("fault %d", k), func(t *testing.T) {
			db, w, all, deleted := deltaFaultStore(t, t.TempDir())
			inner := moveBeforeSwitch
			n := 0
			moveBeforeSwitch = func(mw record.Window, ms uint8) {
				inner(mw, ms)
				sealTxnFault = func() error {
					n++
					if n == k {
						hit = true
						return errors.New("injected: disk full")
					}
					return nil
				}
			}
			err := db.sealWindow(w, 5, 6)
			sealTxnFault = nil
			t.Logf("fault %d: %d transactions, pass: %v", k, n, err)
			if t.Failed() {
				t.FailNow()
			}
			if !hit {
				return
			}
			if err == nil {
				t.Fatal("a fault and no error")
			}
			if db.movedNow(w)&moved(sliceBit(5)) != 0 {
				t.Fatal("moved despite the fault")
			}
			if n := keysUnder(t, db, slicePrefix(w, 5|movedSpace)); n != 0 {
				t.Errorf("%d keys left in the moved space after a failed switch", n)
			}
			kept := keptOf(*all, *deleted)
			want := readEverything(t, reference(t, kept), *all, 3)
			compareReads(t, "after the fault", want, readEverything(t, db, *all, 3))
			if err := db.sealWindow(w, 5, 6); err != nil {
				t.Fatal(err)
			}
			if db.movedNow(w)&moved(sliceBit(5)) == 0 {
				t.Fatal("not moved by the next pass")
			}
			compareReads(t, "moved by the next pass", want, readEverything(t, db, *all, 3))
			checkRunRules(t, db)
		})
		if !ok || !hit {
			break
		}
	}
}

// TestACrashBetweenTheDeltaAndTheMarkerLeavesNothingWrong: the marker transaction
// fails, and the drop of the copies with it (a collection runs): what the
// delta transactions wrote stays in the moved space, as after a crash
// between them and the marker. Readers, the scrub, a reopen and the next
// move must not see it.
func TestACrashBetweenTheDeltaAndTheMarkerLeavesNothingWrong(t *testing.T) {
	if raceDetector || testing.Short() {
		t.Skip("a minute under the race detector; make test runs this test without -race")
	}
	for _, other := range []bool{true, false} {
		t.Run(fmt.Sprintf("other slices moved=%v", other), func(t *testing.T) {
			otherSlicesMoved = other
			defer func() { otherSlicesMoved = false }()
			crashBetweenTheDeltaAndTheMarker(t)
		})
	}
}

var otherSlicesMoved bool

func crashBetweenTheDeltaAndTheMarker(t *testing.T) {
	n := 0
	// a dry run in a copy to count the switch's transactions
	{
		db2, w2, _, _ := deltaFaultStore(t, t.TempDir())
		inner2 := moveBeforeSwitch
		moveBeforeSwitch = func(mw record.Window, ms uint8) {
			inner2(mw, ms)
			sealTxnFault = func() error { n++; return nil }
		}
		if err := db2.sealWindow(w2, 5, 6); err != nil {
			t.Fatal(err)
		}
		sealTxnFault = nil
		db2.Close()
	}
	dir := t.TempDir()
	db, w, all, deleted := deltaFaultStore(t, dir)
	inner := moveBeforeSwitch
	total := n
	t.Logf("the switch takes %d transactions", total)
	if total < 3 {
		t.Fatalf("the delta took %d transactions; want several", total-1)
	}
	n = 0
	moveBeforeSwitch = func(mw record.Window, ms uint8) {
		inner(mw, ms)
		sealTxnFault = func() error {
			n++
			if n == total {
				db.collecting.Lock() // the drop after the failure cannot run
				return errors.New("injected: the marker fails")
			}
			return nil
		}
	}
	err := db.sealWindow(w, 5, 6)
	sealTxnFault = nil
	db.collecting.Unlock()
	t.Logf("pass: %v", err)
	if err == nil || db.movedNow(w)&moved(sliceBit(5)) != 0 {
		t.Fatalf("pass %v, moved %x: want a failed switch", err, db.movedNow(w))
	}
	left := keysUnder(t, db, slicePrefix(w, 5|movedSpace))
	t.Logf("%d keys left in the moved space", left)
	if left == 0 {
		t.Fatal("nothing left: the scenario did not happen")
	}
	kept := keptOf(*all, *deleted)
	want := readEverything(t, reference(t, kept), *all, 3)
	compareReads(t, "beside the delta", want, readEverything(t, db, *all, 3))
	sr, err := db.Scrub(context.Background(), 0)
	if err != nil || sr.Records != uint64(len(kept)) || sr.Buckets != 0 || sr.DamagedBlocks != 0 {
		t.Fatalf("scrub beside the delta: %+v, %v; want %d records", sr, err, len(kept))
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir, smallTransactions)
	compareReads(t, "beside the delta, reopened", want, readEverything(t, db, *all, 3))
	res, err := db.Write(context.Background(), kept, OriginRemote)
	if err != nil || res.Duplicates != len(kept) {
		t.Fatalf("writing the records again: %+v, %v; want all duplicates", res, err)
	}
	// a record deleted now, then the move
	victim := kept[len(kept)/3].ID
	if res, err := db.Delete(context.Background(), []record.ID{victim}); err != nil || res.Written != 1 {
		t.Fatalf("delete: %+v %v", res, err)
	}
	*deleted = append(*deleted, victim)
	kept = keptOf(*all, *deleted)
	want = readEverything(t, reference(t, kept), *all, 3)
	if err := db.sealWindow(w, 5, 6); err != nil {
		t.Fatal(err)
	}
	if db.movedNow(w)&moved(sliceBit(5)) == 0 {
		t.Fatal("not moved")
	}
	compareReads(t, "moved after the crash", want, readEverything(t, db, *all, 3))
	checkRunRules(t, db)
}

// TestARunEmptiedBeforeTheSwitchDoesNotStopTheMove: a run deleted
// whole after its copy: the rounds cannot copy it again (it has no records
// left to list), and its delta (every block turned loose, every record
// deleted) is counted twice over against the switch's budget.
func TestARunEmptiedBeforeTheSwitchDoesNotStopTheMove(t *testing.T) {
	db := openTest(t, t.TempDir(), smallTransactions)
	w := record.WindowOf(time.Now().UnixMilli() - 3*record.WindowMillis)
	const s = 5
	es := writeSpaced(t, db, w, s, 1, 4000, 10)
	t.Cleanup(func() { moveBeforeSwitch = nil })
	moveBeforeSwitch = func(record.Window, uint8) {
		moveBeforeSwitch = nil
		for i := 0; i < len(es); i += 500 {
			var ids []record.ID
			for _, e := range es[i : i+500] {
				ids = append(ids, e.ID)
			}
			if _, err := db.Delete(context.Background(), ids); err != nil {
				t.Errorf("delete: %v", err)
			}
		}
	}
	err := db.sealWindow(w, s, s+1)
	t.Logf("pass: %v; budget %d keys", err, switchBudget*db.bdb.MaxBatchCount())
	if err != nil {
		err2 := db.sealWindow(w, s, s+1)
		t.Fatalf("a run deleted whole before the switch failed the move: %v (the next pass: %v, moved %x)", err, err2, db.movedNow(w))
	}
}

// randomOp is a write (from origin) or a delete, replayed on a store that
// never seals.
type randomOp struct {
	write  []Entry
	origin Origin
	del    []record.ID
}

// replayAndCompare replays ops on a store that never seals and compares
// every reader of db with it: as moved, after the drop of the moved slices'
// loose records (then afterDrop, if given, with the reference) and after
// sealing everything again. It returns what the reference reads and every
// record written.
func replayAndCompare(t *testing.T, db *DB, ops []randomOp, afterDrop func(ref *DB)) (want map[string]string, everything []Entry) {
	t.Helper()
	ref := openTest(t, t.TempDir())
	for _, op := range ops {
		if op.write != nil {
			if _, err := ref.Write(context.Background(), op.write, op.origin); err != nil {
				t.Fatal(err)
			}
			everything = append(everything, op.write...)
		} else if _, err := ref.Delete(context.Background(), op.del); err != nil {
			t.Fatal(err)
		}
	}
	want = readEverything(t, ref, everything, 5)
	compareReads(t, "moved", want, readEverything(t, db, everything, 5))
	checkRunRules(t, db)
	db.allowDiscard()
	if err := db.dropMoved(true); err != nil {
		t.Fatal(err)
	}
	compareReads(t, "dropped", want, readEverything(t, db, everything, 5))
	if afterDrop != nil {
		afterDrop(ref)
	}
	moveAll(t, db)
	compareReads(t, "sealed", want, readEverything(t, db, everything, 5))
	checkRunRules(t, db)
	return want, everything
}

// TestRandomChangesBesideAMoveReadExactly: a writer adds, deletes, writes
// again and removes whole runs of a slice while it is moved (copies,
// rounds, switch), some runs sealed in place before; the moved slice must
// read as a store that never sealed, given the same operations.
func TestRandomChangesBesideAMoveReadExactly(t *testing.T) {
	if raceDetector || testing.Short() {
		t.Skip("a minute under the race detector; make test runs this test without -race")
	}
	for seed := uint64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { randomMove(t, seed) })
	}
}

func randomMove(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 99))
	per := []int{5, 16, 64}[rng.IntN(3)]
	vt := []int64{0, 64}[rng.IntN(2)]
	dir := t.TempDir()
	db := openTest(t, dir, func(c *Config) {
		c.SealBlockRecords = per
		c.MaintenanceInterval = time.Hour
		c.MemTableBytes = 1 << 20
		if vt > 0 {
			c.ValueThreshold = vt
		}
	})
	w := record.WindowOf(time.Now().UnixMilli() - 3*record.WindowMillis)
	const s = 6
	parts := []record.Partition{3, 4, 77, 150}
	var ops []randomOp
	live := map[record.ID]Entry{}
	var mu sync.Mutex
	write := func(es []Entry) {
		if len(es) == 0 {
			return
		}
		res, err := db.Write(context.Background(), es, OriginLocal)
		if err != nil || res.Written != len(es) {
			t.Errorf("write: %+v, %v", res, err)
			return
		}
		mu.Lock()
		ops = append(ops, randomOp{write: es})
		for _, e := range es {
			live[e.ID] = e
		}
		mu.Unlock()
	}
	remove := func(ids []record.ID) {
		if len(ids) == 0 {
			return
		}
		if _, err := db.Delete(context.Background(), ids); err != nil {
			t.Errorf("delete: %v", err)
			return
		}
		mu.Lock()
		ops = append(ops, randomOp{del: ids})
		for _, id := range ids {
			delete(live, id)
		}
		mu.Unlock()
	}
	n := 0
	mint := func(r *rand.Rand, p record.Partition) Entry {
		n++
		return entryAt(sliceStart(w, s)+r.Int64N(SliceMillis), p, fmt.Sprintf("rec %d word%d %s", n, n%20, string(make([]byte, r.IntN(100)))))
	}
	for _, p := range parts[:3] {
		var es []Entry
		for range 300 + rng.IntN(1500) {
			es = append(es, mint(rng, p))
		}
		write(es)
	}
	// old in-place seals
	for _, p := range parts[:3] {
		if rng.IntN(2) == 0 {
			if _, err := db.sealRun(w, s, p, 1+rng.IntN(20), rng.IntN(400)); err != nil {
				t.Fatal(err)
			}
		}
	}
	var stepMu sync.Mutex
	step := func(r *rand.Rand) {
		stepMu.Lock()
		defer stepMu.Unlock()
		mu.Lock()
		ids := make([]record.ID, 0, len(live))
		for id := range live {
			ids = append(ids, id)
		}
		mu.Unlock()
		slices.SortFunc(ids, record.Compare)
		switch r.IntN(6) {
		case 0, 1: // late records
			var es []Entry
			for range 1 + r.IntN(40) {
				es = append(es, mint(r, parts[r.IntN(len(parts))]))
			}
			write(es)
		case 2: // deletes
			var del []record.ID
			for range 1 + r.IntN(30) {
				if len(ids) > 0 {
					del = append(del, ids[r.IntN(len(ids))])
				}
			}
			slices.SortFunc(del, record.Compare)
			remove(slices.Compact(del))
		case 3: // deleted and written again
			if len(ids) > 0 {
				id := ids[r.IntN(len(ids))]
				mu.Lock()
				e := live[id]
				mu.Unlock()
				remove([]record.ID{id})
				write([]Entry{e})
			}
		case 4: // a stretch of a run removed
			if len(ids) > 0 {
				i := r.IntN(len(ids))
				j := min(len(ids), i+r.IntN(200))
				var del []record.ID
				for _, id := range ids[i:j] {
					if id.Partition() == ids[i].Partition() {
						del = append(del, id)
					}
				}
				remove(del)
			}
		case 5: // written, then deleted
			e := mint(r, parts[r.IntN(len(parts))])
			write([]Entry{e})
			remove([]record.ID{e.ID})
		}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	wr := rand.New(rand.NewPCG(seed, 7))
	bg := rng.IntN(2) == 0
	t.Cleanup(func() { moveBeforeSwitch = nil })
	moveBeforeSwitch = func(record.Window, uint8) {
		for range 3 + rng.IntN(30) {
			step(rng)
		}
	}
	if bg {
		go func() {
			defer close(done)
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Duration(wr.IntN(3000)) * time.Microsecond):
				}
				step(wr)
			}
		}()
	} else {
		close(done)
	}
	var passErr error
	for range 3 {
		if passErr = db.sealWindow(w, s, s+1); passErr == nil && db.movedNow(w) != 0 {
			break
		}
		t.Logf("pass: %v", passErr)
	}
	close(stop)
	<-done
	moveBeforeSwitch = nil
	if t.Failed() {
		t.FailNow()
	}
	if db.movedNow(w) == 0 {
		t.Fatalf("not moved: %v", passErr)
	}
	st := db.Stats()
	t.Logf("per %d vt %d bg %v: %d ops, %d live, recopied %d, unsealed %d", per, vt, bg, len(ops), len(live), st.MovedRunsRecopied, st.BlocksUnsealed)
	replayAndCompare(t, db, ops, nil)
}
