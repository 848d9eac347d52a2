package index

import (
	"context"
	"fmt"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/logmesh/logmesh/record"
)

// runSizes are the runs of one slice in the tests of SealMinRecords: below,
// at and above the default minimum of 64.
var runSizes = map[record.Partition]int{3: 5, 77: 63, 150: 64, 201: 200}

// smallRunEntries makes runSizes' runs in one slice of the window two hours
// ago.
func smallRunEntries(seq int) []Entry {
	w := record.WindowOf(time.Now().UnixMilli() - 2*record.WindowMillis)
	start := sliceStart(w, 17)
	var es []Entry
	for p, n := range runSizes {
		for i := range n {
			id := idIn(start+int64(i)*37+int64(seq), p)
			r := &record.Record{ID: id, Hostname: "host", AppName: "app",
				Message: fmt.Sprintf("message %d of run %d, pass %d", i, p, seq), Raw: []byte(fmt.Sprintf("<13>raw line %d", i))}
			es = append(es, Entry{ID: id, Data: r.AppendEncode(nil)})
		}
	}
	return es
}

// runKeys counts a run's loose records and blocks under slice byte s.
func runKeys(t *testing.T, db *DB, w record.Window, s uint8, p record.Partition) (loose, blocks int) {
	t.Helper()
	err := db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: runPrefix(w, s, p), PrefetchValues: false})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if len(it.Item().Key()) == recordKeyLen {
				loose++
			} else {
				blocks++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return loose, blocks
}

// TestRunsTooSmallForABlockStayLoose: with the default SealMinRecords (64),
// sealing a slice in place leaves its runs of 5 and 63 records loose and
// makes blocks of those of 64 and 200; every reader reads what a store that
// never sealed holds, and RecordsSealed counts only the records in blocks.
func TestRunsTooSmallForABlockStayLoose(t *testing.T) {
	db := openTest(t, t.TempDir(), func(c *Config) { c.SealMinRecords = 0 }) // the default
	if db.cfg.SealMinRecords != 64 {
		t.Fatalf("default SealMinRecords %d, want 64", db.cfg.SealMinRecords)
	}
	es := smallRunEntries(0)
	if _, err := db.Write(context.Background(), es, OriginLocal); err != nil {
		t.Fatal(err)
	}
	want := readEverything(t, reference(t, es), es, 3)
	w, s := es[0].ID.Window(), sliceOf(es[0].ID.Millis())
	sealed := 0
	for p := range runSizes {
		n, err := db.sealRun(w, s, p, db.cfg.SealBlockRecords, 0)
		if err != nil {
			t.Fatal(err)
		}
		sealed += n
	}
	for p, n := range runSizes {
		loose, blocks := runKeys(t, db, w, s, p)
		if n < 64 && (loose != n || blocks != 0) || n >= 64 && (loose != 0 || blocks != 1) {
			t.Errorf("run of %d records sealed in place: %d loose, %d blocks", n, loose, blocks)
		}
	}
	if sealed != 264 || db.Stats().RecordsSealed != 264 || db.Stats().BlocksWritten != 2 {
		t.Errorf("sealed %d records, RecordsSealed %d, %d blocks; want 264, 264, 2", sealed, db.Stats().RecordsSealed, db.Stats().BlocksWritten)
	}
	compareReads(t, "sealed in place", want, readEverything(t, db, es, 3))
	checkRunRules(t, db)
}

// TestAMoveCopiesRunsTooSmallForABlockLoose moves a slice whose runs hold 5,
// 63, 64 and 200 records, with the default SealMinRecords: the small runs go
// into the moved space as loose records, the others as blocks. Between the
// copy and the switch a late record lands in the runs of 63 and 200 records
// and a record of each is deleted; the switch carries both over, loose in
// the small run. The other two runs reach the moved space only by their
// copies. Every
// reader matches a store that never sealed, with the loose records still
// beside and after they are dropped, and after a reopen; the counters count
// only the records in blocks.
func TestAMoveCopiesRunsTooSmallForABlockLoose(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir, func(c *Config) { c.SealMinRecords = 0; c.MaintenanceInterval = time.Hour })
	es := smallRunEntries(0)
	if _, err := db.Write(context.Background(), es, OriginLocal); err != nil {
		t.Fatal(err)
	}
	w, s := es[0].ID.Window(), sliceOf(es[0].ID.Millis())
	// the changes between the copy and the switch, in the runs of 63 and
	// 200 records: one record deleted and a late one written (inside the
	// run's range); the runs of 5 and 64 records do not change, so only
	// their copies bring them into the moved space
	changed := func(p record.Partition) bool { return p == 77 || p == 201 }
	var lateOnes []Entry
	var gone []record.ID
	seen := map[record.Partition]bool{}
	for _, e := range smallRunEntries(1) {
		if p := e.ID.Partition(); changed(p) && !seen[p] {
			seen[p] = true
			lateOnes = append(lateOnes, e)
		}
	}
	seen = map[record.Partition]bool{}
	for _, e := range es {
		if p := e.ID.Partition(); changed(p) && !seen[p] {
			seen[p] = true
			gone = append(gone, e.ID)
		}
	}
	hooked := false
	moveBeforeSwitch = func(record.Window, uint8) {
		if hooked {
			return
		}
		hooked = true
		if _, err := db.Write(context.Background(), lateOnes, OriginLocal); err != nil {
			t.Error(err)
		}
		if _, err := db.Delete(context.Background(), gone); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(func() { moveBeforeSwitch = nil })

	if err := db.sealWindow(w, s, s+1); err != nil {
		t.Fatal(err)
	}
	if !hooked || db.movedNow(w)&moved(sliceBit(s)) == 0 {
		t.Fatalf("the slice was not moved (hook ran: %v)", hooked)
	}
	final := append([]Entry(nil), es...)
	final = append(final, lateOnes...)
	ref := reference(t, final)
	if _, err := ref.Delete(context.Background(), gone); err != nil {
		t.Fatal(err)
	}
	want := readEverything(t, ref, final, 4)
	for p, n := range runSizes {
		loose, blocks := runKeys(t, db, w, s|movedSpace, p)
		if n < 64 && (loose != n || blocks != 0) || n >= 64 && (loose != 0 || blocks == 0) {
			t.Errorf("run of %d records moved (one late, one deleted): %d loose, %d blocks in the moved space", n, loose, blocks)
		}
	}
	st := db.Stats()
	if st.RecordsSealed != 265 || st.BlocksWritten != 2 || st.BlocksMerged != 1 {
		// the 264 records copied into blocks and the late record the
		// block of 200 took in; none of the small runs' records
		t.Errorf("RecordsSealed %d, %d blocks written, %d merged after moving runs of 64 and 200 records (one late and one deleted in the second); want 265, 2, 1",
			st.RecordsSealed, st.BlocksWritten, st.BlocksMerged)
	}
	compareReads(t, "moved, loose records beside", want, readEverything(t, db, final, 4))
	checkRunRules(t, db)

	db.allowDiscard()
	if err := db.dropMoved(true); err != nil {
		t.Fatal(err)
	}
	if n := keysUnder(t, db, slicePrefix(w, s)); n != 0 {
		t.Fatalf("%d keys left in the loose space after the drop", n)
	}
	compareReads(t, "moved, loose space dropped", want, readEverything(t, db, final, 4))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir, func(c *Config) { c.SealMinRecords = 0; c.MaintenanceInterval = time.Hour })
	compareReads(t, "moved, reopened", want, readEverything(t, db, final, 4))
	checkRunRules(t, db)
}
